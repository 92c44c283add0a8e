"""cawb/training/trainer.py: CAWB inside ultralytics' detection trainer, with real (tiny, CPU) training runs."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from ultralytics import YOLO
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file
from ultralytics.utils.patches import torch_load

from cawb import CawbDetectionTrainer, CosineAnnealingWarmbootingLR
from cawb.schedule import CawbSchedule
from cawb.training.hyp import HypError, schedule_from_hyp
from cawb.training.train import TrainingInterrupted, train

pytestmark = pytest.mark.slow  # every test trains

REPO_ROOT = Path(__file__).resolve().parents[2]

LR_COLUMNS = ("lr/pg0", "lr/pg1", "lr/pg2")  # weights with decay, weights without (BN), biases
CAWB = dict(cawb=True, cawb_steps=[2, 4], cawb_step_scale=0.8, cawb_epoch_scale=1.5, cawb_lf_min=0.2)


def run_args(data, project, name, **overrides):
    """Small, fast, deterministic CPU runs: yolov5n at 64 px, 16 images, validation only at the end."""
    base = dict(data=str(data), epochs=6, imgsz=64, batch=8, device="cpu", workers=0, optimizer="SGD", lr0=0.01,
                warmup_epochs=1, seed=0, val=False, plots=False, project=str(project), name=name, exist_ok=True)
    return {**base, **overrides}


def results(save_dir):
    lines = (Path(save_dir) / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]


@pytest.fixture(scope="module")
def cawb_run(tiny_shapes, tmp_path_factory):
    """One uninterrupted CAWB run (with plots, to check lr.png) shared by the tests below."""
    model = YOLO("yolov5n.yaml")
    model.train(trainer=CawbDetectionTrainer, **run_args(tiny_shapes, tmp_path_factory.mktemp("runs"), "cawb",
                                                         **{**CAWB, "plots": True}))
    return model.trainer


def expected_schedule(epochs=6, warmup=1):
    return CawbSchedule(epochs=epochs, warmup_epochs=warmup, restart_epochs=[2, 4], step_scale=0.8,
                        epoch_scale=1.5, lf_min=0.2)


def test_lr_columns_are_lr0_times_cawb_after_warmup(cawb_run):
    assert isinstance(cawb_run.scheduler, CosineAnnealingWarmbootingLR)
    schedule = expected_schedule()
    rows = results(cawb_run.save_dir)
    assert len(rows) == 6
    for row in rows[1:]:  # epoch 0 is the warmup epoch
        epoch = int(row["epoch"]) - 1
        for column in LR_COLUMNS:
            assert row[column] == pytest.approx(0.01 * schedule(epoch), rel=1e-5), (epoch, column)
    # The restarts are visible: the lr rises after each restart epoch.
    lrs = [row["lr/pg0"] for row in rows]
    assert lrs[3] > lrs[2] and lrs[5] > lrs[4]


def test_warmup_ramps_toward_the_first_cawb_peak(cawb_run):
    first = results(cawb_run.save_dir)[0]
    # 2 batches per epoch and 1 warmup epoch: the last batch of epoch 0 sits halfway up the ramp to lr0 * f(0),
    # and the bias lr halfway down from warmup_bias_lr (0.1).
    assert first["lr/pg0"] == pytest.approx(0.5 * 0.01 * expected_schedule()(0), rel=1e-5)
    assert first["lr/pg2"] == pytest.approx(0.1 + 0.5 * (0.01 - 0.1), rel=1e-5)


def test_lr_plot_is_saved_beside_the_results(cawb_run):
    png = Path(cawb_run.save_dir) / "lr.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cawb_settings_travel_in_the_checkpoint(cawb_run):
    # Every epoch's last.pt carries them in train_args (the final strip keeps them in the model's args).
    checkpoint = torch_load(Path(cawb_run.save_dir) / "weights" / "last.pt", map_location="cpu")
    args = checkpoint["model"].args
    assert args["cawb"] is True and args["cawb_steps"] == [2, 4] and args["cawb_lf_min"] == 0.2


@pytest.mark.compat
def test_cawb_off_is_identical_to_stock_ultralytics(tiny_shapes, tmp_path):
    stock = dict(cos_lr=True, lrf=0.2, epochs=4)
    ours = YOLO("yolov5n.yaml")
    ours.train(trainer=CawbDetectionTrainer, **run_args(tiny_shapes, tmp_path, "ours", cawb=False, **stock))
    plain = YOLO("yolov5n.yaml")
    plain.train(**run_args(tiny_shapes, tmp_path, "stock", **stock))
    assert type(plain.trainer) is not CawbDetectionTrainer
    ours_rows, stock_rows = results(ours.trainer.save_dir), results(plain.trainer.save_dir)
    assert len(ours_rows) == len(stock_rows) == 4
    for mine, theirs in zip(ours_rows, stock_rows):
        for column in LR_COLUMNS + ("train/box_loss", "train/cls_loss", "train/dfl_loss"):
            assert mine[column] == theirs[column], column
    # ultralytics' pipeline unchanged (its clipping at 10, augmentation, best.pt fitness, cadence), the gradient
    # norm logged beside it
    assert ours.trainer.args.max_grad_norm == 10.0 and ours.trainer.args.lr_epoch_lag is False
    # nbs 64 with 2 batches of 8 per epoch: the warmup's first steps, then one step every 4 epochs (NaN: no step)
    stepped = [row for row in ours_rows if not math.isnan(row["train/grad_norm_max"])]
    assert stepped and all(0 < row["train/grad_norm_mean"] <= row["train/grad_norm_max"] for row in stepped)
    assert "train/grad_norm_max" not in stock_rows[0]


def test_resume_after_an_interruption_continues_the_same_curve(tiny_shapes, tmp_path, cawb_run):
    def stop_after_third_epoch(trainer):  # as Ctrl-C would, once epoch 3's checkpoint is saved
        if trainer.epoch == 2:
            raise KeyboardInterrupt

    settings = {key: value for key, value in run_args(tiny_shapes, tmp_path, "interrupted", **CAWB).items()
                if key not in ("data", "project", "name")}
    with pytest.raises(TrainingInterrupted) as interrupted:
        train(callbacks={"on_fit_epoch_end": stop_after_third_epoch}, data=str(tiny_shapes), cfg="yolov5n.yaml",
              hyp=str(REPO_ROOT / "hyp/hyp.shapes-cawb.yaml"), project=str(tmp_path), name="interrupted", **settings)
    last = tmp_path / "interrupted" / "weights" / "last.pt"
    assert interrupted.value.last == last and len(results(last.parents[1])) == 3

    # Resume through the train_cawb.py library path: no CAWB flags, they come from the checkpoint.
    result = train(resume=str(last))
    assert result.save_dir == last.parents[1]
    resumed, uninterrupted = results(result.save_dir), results(cawb_run.save_dir)
    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4, 5, 6]
    for mine, reference in zip(resumed, uninterrupted):
        for column in LR_COLUMNS:
            assert mine[column] == pytest.approx(reference[column], rel=1e-6)


def test_ddp_worker_state_rebuilds_the_cawb_trainer_and_trains(tiny_shapes, tmp_path):
    trainer = CawbDetectionTrainer(overrides={**run_args(tiny_shapes, tmp_path, "ddp", **CAWB), "epochs": 3,
                                              "model": "yolov5n.yaml", "plots": False})
    file = generate_ddp_file(trainer)
    try:
        script = Path(file).read_text()
        # ultralytics' worker protocol, which the checks below rely on:
        assert 'state["trainer"](cfg=cfg, overrides=state["args"]' in script
        state = torch_load(Path(file).with_suffix(".pt"), map_location="cpu")
        assert state["trainer"] is CawbDetectionTrainer
        assert {key: state["args"][key] for key in CAWB} == CAWB

        cfg = {**DEFAULT_CFG_DICT, "save_dir": ""}  # exactly what the worker script passes
        worker = state["trainer"](cfg=cfg, overrides=state["args"], _callbacks=state["callbacks"])
        assert worker.cawb_schedule() == trainer.cawb_schedule() == expected_schedule(epochs=3)

        # The generated script itself, run as one CPU process, trains with the CAWB curve.
        subprocess.run([sys.executable, file], check=True, capture_output=True, timeout=300)
        rows = results(tmp_path / "ddp")
        assert [row["lr/pg0"] for row in rows[1:]] == pytest.approx(
            [0.01 * expected_schedule(epochs=3)(e) for e in (1, 2)], rel=1e-5)
    finally:
        ddp_cleanup(trainer, file)


def test_time_budget_mode_rebuilds_the_schedule_for_the_new_epoch_count(tiny_shapes, tmp_path):
    seen = {}

    def record_epochs(trainer):  # before the scheduler steps: the epoch count its schedule was built for
        seen[trainer.epoch] = {"epochs": trainer.epochs}

    def record_lr(trainer):
        seen[trainer.epoch]["lr"] = trainer.optimizer.param_groups[0]["lr"]

    model = YOLO("yolov5n.yaml")
    model.add_callback("on_train_epoch_start", record_epochs)
    model.add_callback("on_train_epoch_end", record_lr)
    args = run_args(tiny_shapes, tmp_path, "timed", **{**CAWB, "cawb_steps": [1, 2]})
    model.train(trainer=CawbDetectionTrainer, **{**args, "epochs": 100, "time": 0.0015, "warmup_epochs": 0})
    assert seen[0]["epochs"] == 100 and any(record["epochs"] != 100 for record in seen.values())
    hyp = vars(model.trainer.args)
    for epoch, record in seen.items():
        schedule = schedule_from_hyp(hyp, epochs=record["epochs"])
        assert record["lr"] == pytest.approx(0.01 * schedule(epoch), rel=1e-9), epoch
    assert isinstance(model.trainer.scheduler, CosineAnnealingWarmbootingLR)
    assert model.trainer.scheduler.schedule.epochs == model.trainer.epochs


def test_bad_cawb_value_fails_at_construction_naming_the_key(tiny_shapes, tmp_path):
    with pytest.raises(HypError, match="cawb_step_scale=-1"):
        CawbDetectionTrainer(overrides={**run_args(tiny_shapes, tmp_path, "bad", **CAWB), "cawb_step_scale": -1,
                                        "model": "yolov5n.yaml"})
    assert not (tmp_path / "bad").exists()  # refused before ultralytics made the run directory


def test_resuming_a_copy_of_last_pt_never_writes_over_the_finished_run(tiny_shapes, tmp_path):
    """A copy of an interrupted run's last.pt records the run directory it came from; resumed after that run was
    finished from its own last.pt, it must leave the finished run alone (ultralytics alone would resume into it,
    overwriting its weights and adding epochs to its results.csv)."""
    def stop_after_first_epoch(trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt

    settings = {key: value for key, value in run_args(tiny_shapes, tmp_path, "exp", epochs=2).items()
                if key not in ("data", "project", "name", "exist_ok")}
    with pytest.raises(TrainingInterrupted) as interrupted:
        train(callbacks={"on_fit_epoch_end": stop_after_first_epoch}, data=str(tiny_shapes), cfg="yolov5n.yaml",
              hyp=str(REPO_ROOT / "hyp/hyp.shapes-cos.yaml"), project=str(tmp_path / "runs"), name="exp",
              **settings)
    original = tmp_path / "runs" / "exp"
    assert interrupted.value.last == original / "weights" / "last.pt"
    loose_copy = tmp_path / "backup" / "last.pt"  # copied away as a file
    moved_copy = tmp_path / "moved" / "exp" / "weights" / "last.pt"  # copied into a run directory of its own
    for copy in (loose_copy, moved_copy):
        copy.parent.mkdir(parents=True)
        copy.write_bytes(interrupted.value.last.read_bytes())

    assert train(resume=str(original / "weights" / "last.pt")).save_dir == original  # the original run finishes
    finished = {name: (original / name).read_bytes() for name in ("weights/last.pt", "weights/best.pt", "results.csv")}

    from_loose = train(resume=str(loose_copy))
    assert {name: (original / name).read_bytes() for name in finished} == finished  # nothing of it was touched
    assert from_loose.save_dir == tmp_path / "runs" / "exp-2"  # the next free name, as ultralytics numbers runs
    assert any("exp-2" in note and "new directory" in note for note in from_loose.notes)
    assert [row["epoch"] for row in results(from_loose.save_dir)] == [2]

    from_moved = train(resume=str(moved_copy))  # where the checkpoint is: its own run directory
    assert from_moved.save_dir == moved_copy.parents[1]
    assert {name: (original / name).read_bytes() for name in finished} == finished
    assert [row["epoch"] for row in results(from_moved.save_dir)] == [2]


def test_a_trainer_built_from_a_planned_run_checks_nothing_again(tiny_shapes, tmp_path, monkeypatch):
    from cawb.training import cawb_mixin
    from cawb.training.config import plan_run

    config = plan_run(data=str(tiny_shapes), cfg="yolov5n.yaml", hyp=str(REPO_ROOT / "hyp/hyp.shapes-cawb.yaml"),
                      epochs=2, imgsz=64, batch=8, workers=0, plots=False, project=str(tmp_path), name="planned")
    calls = []
    real = cawb_mixin.schedule_from_hyp
    monkeypatch.setattr(cawb_mixin, "schedule_from_hyp", lambda *a, **k: calls.append(a) or real(*a, **k))
    run_dir = train(config).save_dir
    assert calls == [] and (run_dir / "weights" / "last.pt").is_file()  # the planned schedule was used as it was

    CawbDetectionTrainer(overrides={**run_args(tiny_shapes, tmp_path, "raw", **CAWB), "model": "yolov5n.yaml"})
    assert len(calls) == 1  # built from raw args (ultralytics' way), the trainer checks them itself, once
