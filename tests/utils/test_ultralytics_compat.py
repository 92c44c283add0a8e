"""cawb/utils/ultralytics_compat/: the supported range, its refusal in one line, and the surface cawb uses.

The quick tests here are part of the compatibility subset (``-m compat``) that scripts/check_ultralytics.sh runs
against another ultralytics release: there they check that the release imported is the one installed for the
run and that each part of the surface works on it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cawb.utils import ultralytics_compat as compat
from cawb.utils.ultralytics_compat import support

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.compat

# Every command that uses ultralytics, with arguments that would make it work (the refusal must come first).
COMMANDS = [
    ["train_cawb.py", "--epochs", "1"],
    ["scripts/plot_lr.py", "--hyp", "scratch-cawb", "--out", "lr.png"],
    ["scripts/compare.py", "--preset", "cpu", "--epochs", "1"],
    ["scripts/evaluate.py", "--weights", "best.pt", "--data", "shapes", "--imgsz", "64"],
    ["scripts/tune.py", "--trials", "1"],
]


def test_the_release_imported_is_the_one_installed_and_it_is_supported():
    import ultralytics

    # the compatibility run installs another release in front of this environment's: this is what it measures
    assert compat.installed_version() == ultralytics.__version__
    assert compat.require_supported_ultralytics() == ultralytics.__version__
    expected = os.environ.get("CAWB_EXPECT_ULTRALYTICS")
    if expected:
        assert ultralytics.__version__ == expected


def test_pyproject_readme_and_ci_state_the_range_of_the_module():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"ultralytics>={compat.OLDEST_SUPPORTED}"' in pyproject
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{compat.OLDEST_SUPPORTED} to {compat.NEWEST_TESTED}" in readme
    refused = re.findall(r"check_ultralytics.sh --refused (\S+)", (REPO / ".ci/run").read_text(encoding="utf-8"))
    assert len(refused) == 1 and support._release(refused[0]) < support._release(compat.OLDEST_SUPPORTED)


def test_settings_rules_and_optimizers_come_from_the_installed_release():
    import torch
    import ultralytics.cfg as cfg
    from ultralytics.engine.trainer import BaseTrainer

    assert compat.default_settings()["lr0"] == cfg.DEFAULT_CFG_DICT["lr0"]
    rules = compat.setting_rules()
    assert "lr0" in rules.fraction_keys and "epochs" in rules.int_keys and "cos_lr" in rules.bool_keys
    names = compat.optimizer_names()
    assert {"SGD", "Adam", "AdamW", "auto"} <= set(names)
    stand_in = type("Trainer", (), {"args": type("Args", (), {"lr0": 0.01})(), "data": {}})()
    for name in set(names) - {"auto", "MuSGD"}:  # MuSGD needs a detection head; auto picks another one
        assert isinstance(BaseTrainer.build_optimizer(stand_in, torch.nn.Linear(1, 1), name=name),
                          torch.optim.Optimizer)
    with pytest.raises(NotImplementedError):  # a name outside the table is one the trainer refuses too
        BaseTrainer.build_optimizer(stand_in, torch.nn.Linear(1, 1), name="SGDD")


def test_stock_schedule_and_warmup_are_the_trainers():
    lf = compat.stock_lr_factor({"cos_lr": False, "lrf": 0.1}, epochs=10)
    assert lf(0) == pytest.approx(1.0) and lf(10) == pytest.approx(0.1)
    assert compat.stock_warmup_iterations({"warmup_epochs": 2}, 10, 8) == 16  # 2 epochs of 8 batches
    assert compat.stock_warmup_iterations({"warmup_epochs": 12}, 10, 8) == 72  # never the last epoch
    assert compat.stock_warmup_iterations({"warmup_epochs": 0}, 10, 8) == 0


def test_a_release_whose_trainer_lacks_a_hook_is_refused_naming_it(monkeypatch):
    from ultralytics.engine.trainer import BaseTrainer

    monkeypatch.delattr(BaseTrainer, "_setup_scheduler")
    support._missing_hooks.cache_clear()
    try:
        with pytest.raises(compat.UnsupportedUltralytics) as error:
            compat.require_supported_ultralytics()
    finally:
        monkeypatch.undo()
        support._missing_hooks.cache_clear()
    message = str(error.value)
    assert "lacks DetectionTrainer._setup_scheduler" in message and "upgrade cawb" in message and "\n" not in message
    assert f'pip install "ultralytics>={compat.OLDEST_SUPPORTED},<={compat.NEWEST_TESTED}"' in message


def fake_release(tmp_path: Path, version: str) -> dict[str, str]:
    """An environment in which ultralytics' metadata says ``version`` (its code stays the installed one)."""
    info = tmp_path / "fake" / f"ultralytics-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ultralytics\nVersion: {version}\n")
    path = os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}


@pytest.mark.slow
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: Path(argv[0]).stem)
def test_every_command_refuses_an_older_release_in_one_line_before_any_work(argv, tmp_path):
    env = fake_release(tmp_path, "8.3.0")
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([sys.executable, str(REPO / argv[0]), *argv[1:]], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ultralytics 8.3.0 is installed")
    assert f"{compat.OLDEST_SUPPORTED} to {compat.NEWEST_TESTED}" in result.stderr
    assert f'pip install "ultralytics>={compat.OLDEST_SUPPORTED},<={compat.NEWEST_TESTED}"' in result.stderr
    assert not list(work.iterdir())  # nothing written


@pytest.mark.slow
def test_the_library_refuses_it_too_and_the_schedule_needs_no_ultralytics(tmp_path):
    env = fake_release(tmp_path, "8.3.0")
    trainer = subprocess.run([sys.executable, "-c", "import cawb; cawb.CawbDetectionTrainer"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert trainer.returncode == 1 and "UnsupportedUltralytics: ultralytics 8.3.0 is installed" in trainer.stderr
    # import cawb, the schedule and its PyTorch scheduler: no ultralytics at all (blocked here)
    code = ("import sys; sys.modules['ultralytics'] = None\n"
            "import torch, cawb\n"
            "schedule = cawb.CawbSchedule(epochs=10, restart_epochs=[5])\n"
            "optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)\n"
            "scheduler = cawb.CosineAnnealingWarmbootingLR(optimizer, schedule=schedule)\n"
            "print(round(schedule(6), 6), [m for m in sys.modules if m.startswith('ultralytics')])")
    alone = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    assert alone.returncode == 0, alone.stderr
    assert re.fullmatch(r"[0-9.]+ \['ultralytics'\]\n", alone.stdout)  # only the blocked entry itself


def _stepping_trainer(weight, lr=0.5, momentum=0.0, ema=False):
    """Just what ultralytics' optimizer step reads: a model with one weight, SGD, a disabled scaler (the CPU's),
    the device and, if asked, ultralytics' EMA."""
    from types import SimpleNamespace

    import torch
    from ultralytics.utils.torch_utils import ModelEMA

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weight]))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return SimpleNamespace(model=model, optimizer=optimizer, scaler=torch.amp.GradScaler("cpu", enabled=False),
                           device=torch.device("cpu"), ema=ModelEMA(model) if ema else None)


def test_the_optimizer_step_at_ultralytics_threshold_is_ultralytics_own_bit_for_bit():
    import torch
    from ultralytics.engine.trainer import BaseTrainer

    theirs, ours = (_stepping_trainer([0.3, -0.7], momentum=0.9, ema=True) for _ in range(2))
    for step in range(3):  # momentum and the EMA carry state from step to step
        for trainer in (theirs, ours):
            trainer.model.weight.grad = torch.tensor([[300.0 + step, -400.0]])  # norm 500: clipped to 10
        BaseTrainer.optimizer_step(theirs)
        norm = compat.optimizer_step(ours, compat.ULTRALYTICS_MAX_GRAD_NORM)
        assert float(norm) == pytest.approx(float(torch.tensor([300.0 + step, -400.0]).norm()))
        assert torch.equal(ours.model.weight, theirs.model.weight)
        assert torch.equal(ours.ema.ema.weight, theirs.ema.ema.weight) and ours.model.weight.grad is None


def test_the_optimizer_step_without_clipping_applies_a_huge_gradient_unscaled():
    import torch

    trainer = _stepping_trainer([1.0, 2.0], lr=0.5)
    trainer.model.weight.grad = torch.tensor([[3e4, 4e4]])
    norm = compat.optimizer_step(trainer, 0.0)
    assert float(norm) == 5e4
    assert trainer.model.weight.tolist() == [[1.0 - 0.5 * 3e4, 2.0 - 0.5 * 4e4]]  # the whole gradient, not 10/5e4 of it


def test_the_fixed_facts_are_the_installed_releases():
    import inspect

    from ultralytics.data.augment import RandomPerspective
    from ultralytics.utils.metrics import DetMetrics

    ar_thr = inspect.signature(RandomPerspective.box_candidates).parameters["ar_thr"].default
    assert ar_thr == compat.ULTRALYTICS_BOX_AR_THR
    assert {compat.MAP50_KEY, compat.MAP50_95_KEY} <= set(DetMetrics().keys)


def test_the_fitness_table_is_what_ultralytics_metrics_compute():
    import numpy as np
    from ultralytics.utils.metrics import ClassifyMetrics, DetMetrics, OBBMetrics, PoseMetrics, SegmentMetrics

    def filled(metric, scale):  # one class: precision, recall and AP at the 10 IoU thresholds
        metric.p, metric.r = np.array([0.6 * scale]), np.array([0.5 * scale])
        metric.all_ap = np.linspace(0.8, 0.2, 10)[None] * scale
        metric.ap_class_index = np.array([0])

    made = {"detect": DetMetrics(names={0: "a"}), "segment": SegmentMetrics(names={0: "a"}),
            "pose": PoseMetrics(names={0: "a"}), "obb": OBBMetrics(names={0: "a"})}
    for task, metrics in made.items():
        filled(metrics.box, 1.0)
        for other in ("seg", "pose"):
            if hasattr(metrics, other):
                filled(getattr(metrics, other), 0.5)
    made["classify"] = ClassifyMetrics()
    made["classify"].top1, made["classify"].top5 = 0.7, 0.9
    assert set(made) == set(compat.FITNESS_COLUMNS)
    for task, metrics in made.items():
        columns, weight = compat.FITNESS_COLUMNS[task]
        row = metrics.results_dict
        assert weight * sum(row[column] for column in columns) == pytest.approx(metrics.fitness), task
