"""cawb/training/lr_curve.py and scripts/plot_lr.py (cawb/cli/plot_lr.py): the lr a hyp file gives under ultralytics' trainer."""

import csv
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from ultralytics.utils.torch_utils import one_cycle

from cawb.cli import plot_lr
from cawb.training.hyp import load_hyp, schedule_from_hyp
from cawb.training.lr_curve import epoch_lr_factor, lr_curve, warmup_iterations

REPO = Path(__file__).resolve().parents[2]


def test_stock_cos_is_ultralytics_one_cycle():
    factor = epoch_lr_factor({"cos_lr": True, "lrf": 0.2}, epochs=30)
    reference = one_cycle(1, 0.2, 30)
    assert [factor(e) for e in range(31)] == [reference(e) for e in range(31)]


def test_stock_linear_goes_from_one_to_lrf():
    factor = epoch_lr_factor({"cos_lr": False, "lrf": 0.1}, epochs=10)
    assert [factor(e) for e in (0, 5, 10)] == pytest.approx([1.0, 0.55, 0.1])


def test_cawb_curve_per_epoch_is_lr0_times_schedule():
    hyp = load_hyp(REPO / "hyp/hyp.scratch-cawb.yaml")
    curve = lr_curve(hyp, epochs=150)
    schedule = schedule_from_hyp(hyp, epochs=150)
    assert curve.epochs == list(range(150))
    assert curve.lrs == pytest.approx([0.01 * schedule(e) for e in range(150)])
    assert curve.restart_epochs == [30, 80]


def test_per_iteration_curve_has_ultralytics_warmup_ramp():
    hyp = {"cawb": True, "cawb_steps": [6], "lr0": 0.02, "warmup_epochs": 2}
    curve = lr_curve(hyp, epochs=10, batches_per_epoch=8)
    schedule = schedule_from_hyp(hyp, epochs=10)
    warmup = warmup_iterations(hyp, 10, 8)
    assert warmup == 16 and len(curve.lrs) == 80
    assert curve.epochs[:3] == pytest.approx([0, 0.125, 0.25])
    assert curve.lrs[0] == 0.0
    ramp = curve.lrs[: warmup + 1]
    assert all(a < b for a, b in zip(ramp, ramp[1:]))  # rising through the warmup
    assert curve.lrs[warmup] == pytest.approx(0.02 * schedule(2))  # lands on the target
    for index in range(warmup + 1, 80):
        assert curve.lrs[index] == pytest.approx(0.02 * schedule(index // 8))


@pytest.mark.compat
def test_plot_script_writes_png_and_csv(tmp_path, capsys):
    out, table = tmp_path / "lr.png", tmp_path / "lr.csv"
    code = plot_lr.main([
        "--hyp", str(REPO / "hyp/hyp.scratch-cawb.yaml"), "--compare", str(REPO / "hyp/hyp.scratch-cos.yaml"),
        "--epochs", "20", "--batches", "400", "--out", str(out), "--csv", str(table),
    ])  # 400 batches: the 3 warmup epochs (1200 iterations) are longer than the file's 1000-iteration floor
    assert code == 0
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    rows = list(csv.reader(table.open()))
    assert rows[0] == ["epoch", "lr"] and len(rows) == 1 + 20 * 400
    assert float(rows[1][0]) == 0 and float(rows[2][0]) == pytest.approx(1 / 400)
    assert max(float(lr) for _, lr in rows[1:]) == pytest.approx(0.01, rel=1e-6)  # lr0 of the file
    assert "plot:" in capsys.readouterr().out


def test_plot_script_rejects_a_bad_hyp_file_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cawb: true\ncawb_step_scale: -1\n")
    assert plot_lr.main(["--hyp", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "cawb_step_scale=-1" in error and error.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_plot_script_help_runs_from_a_clone():
    result = subprocess.run([sys.executable, str(REPO / "scripts/plot_lr.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--compare" in result.stdout and "--batches" in result.stdout


def run_plot(argv, capsys):
    code = plot_lr.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr0: .inf\n", "lr0=inf is invalid: it must be a number in [0, 1]"),
        ("lr0: -1\n", "lr0=-1 is invalid"),
        ("lr0: abc\n", "lr0='abc' is invalid"),
        ("lrf: [0.1, 0.2]\n", "lrf=[0.1, 0.2] is invalid"),
        ("warmup_epochs: .nan\n", "warmup_epochs=nan is invalid: it must be a finite number"),
        ("cos_lr: maybe\n", "cos_lr='maybe' is invalid: it must be true or false"),
        ("optimizer: SGDD\n", "optimizer='SGDD' is invalid: it must be one of "),
        ("mosaic: 2\n", "mosaic=2 is invalid"),  # not an lr setting: still what training would refuse
    ],
)
def test_plot_refuses_lr_settings_training_would_refuse(tmp_path, capsys, text, message):
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text(text)
    code, out, err = run_plot(["--hyp", hyp, "--out", tmp_path / "lr.png"], capsys)
    assert code == 2 and err.startswith(f"error: {hyp}: ") and message in err
    assert err.count("\n") == 1 and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.yaml"]


def test_plot_bounds_epochs_times_batches_before_computing(tmp_path, capsys, monkeypatch):
    from cawb.training import lr_curve as module

    monkeypatch.setattr(module, "MAX_PLOT_POINTS", 100)
    hyp = REPO / "hyp/hyp.scratch-cawb.yaml"
    code, _, err = run_plot(["--hyp", hyp, "--epochs", 10, "--batches", 11, "--out", tmp_path / "lr.png"], capsys)
    assert code == 2 and "10 epochs x 11 batches = 110 points, more than plot_lr draws (100)" in err
    assert not (tmp_path / "lr.png").exists()
    code, out, _ = run_plot(["--hyp", hyp, "--epochs", 10, "--batches", 10, "--out", tmp_path / "lr.png"], capsys)
    assert code == 0 and "100 points" in out and (tmp_path / "lr.png").is_file()


def test_the_real_bound_refuses_a_product_that_would_exhaust_memory_at_once(tmp_path, capsys):
    hyp = REPO / "hyp/hyp.scratch-cawb.yaml"
    argv = ["--hyp", hyp, "--epochs", 100_000, "--batches", 100_000, "--out", tmp_path / "x.png"]
    code, _, err = run_plot(argv, capsys)
    assert code == 2 and "10,000,000,000 points" in err


def test_plot_warns_about_restarts_outside_a_shorter_run(tmp_path, capsys):
    hyp = REPO / "hyp/hyp.scratch-cawb.yaml"  # restarts 30 and 80 of 150 epochs
    code, out, err = run_plot(["--hyp", hyp, "--epochs", 50, "--out", tmp_path / "lr.png"], capsys)
    assert code == 0 and "50 points" in out
    assert err == (f"warning: {hyp}: restart epoch(s) 80 fall outside this 50-epoch run and are not drawn (a restart "
                   "shows from the epoch after it: only warmup_epochs < s < epochs - 1 count)\n")
    code, _, err = run_plot(["--hyp", hyp, "--out", tmp_path / "lr.png"], capsys)
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--out", ".", "is a directory; expected a file name"),
        ("--out", "lr.jpg", "the file name must end in .png"),
        ("--out", "file/lr.png", "is a file, not a directory"),
        ("--csv", "lr.txt", "the file name must end in .csv"),
        ("--csv", "file/lr.csv", "is a file, not a directory"),
    ],
)
def test_plot_checks_its_output_places_first(tmp_path, capsys, monkeypatch, flag, value, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("mine")
    code, _, err = run_plot(["--hyp", REPO / "hyp/hyp.scratch-cawb.yaml", flag, value], capsys)
    assert code == 2 and err.startswith(f"error: {flag} {value}: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_plot_writes_outside_the_checkout_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_plot(["--hyp", REPO / "hyp/hyp.shapes-cawb.yaml"], capsys)
    assert code == 0 and (tmp_path / "runs" / "plot_lr" / "lr.png").is_file()
    assert "plot: runs/plot_lr/lr.png" in out
def test_warmup_floor_raises_short_warmups_and_never_takes_the_last_epoch():
    hyp = {"warmup_epochs": 1.0, "warmup_min_iters": 25}
    assert warmup_iterations(hyp, epochs=10, batches_per_epoch=8) == 25  # 1 epoch = 8 iterations, raised to 25
    assert warmup_iterations({**hyp, "warmup_min_iters": 5}, epochs=10, batches_per_epoch=8) == 8  # floor below
    assert warmup_iterations(hyp, epochs=3, batches_per_epoch=8) == 16  # capped: the last epoch is never warmup
    assert warmup_iterations({**hyp, "warmup_epochs": 0}, epochs=10, batches_per_epoch=8) == 0  # warmup off
    assert warmup_iterations({"warmup_epochs": 1.0}, epochs=10, batches_per_epoch=8) == 8  # default 0: stock
    curve = lr_curve({**hyp, "cawb": True, "lr0": 0.01}, epochs=10, batches_per_epoch=8)
    assert curve.lrs[24] < curve.lrs[25] == pytest.approx(0.01 * schedule_from_hyp({**hyp, "cawb": True}, 10)(3))
