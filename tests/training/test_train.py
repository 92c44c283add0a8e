"""cawb/training/train.py and train_cawb.py: flags, precedence, fail-fast errors, and one real run."""

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cawb.cli import train as train_cli
from cawb.cli.train import build_parser, main, options_from_args, rerun_command
from cawb.schedule import CawbSchedule
from cawb.training import train as train_module
from cawb.training.config import EMBEDDED_DEFAULTS, plan_run
from cawb.training.hyp import load_hyp
from cawb.training.train import TrainingInterrupted
from cawb.utils.errors import InputFileNotFoundError
from cawb.yolov5 import bundled_model_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

ARTICLE_CAWB = REPO_ROOT / "hyp" / "hyp.scratch-cawb.yaml"


def parse(argv):
    return options_from_args(build_parser().parse_args(argv))


def test_underscore_spellings_of_the_seed_code_are_accepted():
    dashes = parse(["--cawb-steps", "30", "80", "--cawb-step-scale", "0.7", "--cawb-epoch-scale-mode", "extend"])
    underscores = parse(["--cawb_steps", "30", "80", "--cawb_step_scale", "0.7", "--cawb_epoch_scale_mode", "extend"])
    assert dashes == underscores == {"cawb_steps": [30, 80], "cawb_step_scale": 0.7, "cawb_epoch_scale_mode": "extend"}


def test_yolov5_flag_names_map_to_ultralytics_keys():
    assert parse(["--batch-size", "32", "--img", "320", "--exist-ok", "--seed", "0", "--workers", "0"]) == {
        "batch": 32, "imgsz": 320, "exist_ok": True, "seed": 0, "workers": 0}


def test_precedence_command_line_over_hyp_file_over_defaults(tiny_shapes):
    plan = plan_run(data=str(tiny_shapes), hyp=str(ARTICLE_CAWB), epochs=50, cawb_steps=[10], lr0=0.02)
    hyp = load_hyp(ARTICLE_CAWB)
    assert plan.overrides["epochs"] == 50 and plan.overrides["cawb_steps"] == [10]  # command line
    assert plan.overrides["lr0"] == 0.02
    assert plan.overrides["momentum"] == hyp["momentum"] and plan.overrides["cawb_step_scale"] == 0.7  # hyp file
    assert plan.overrides["imgsz"] == 640 and plan.overrides["batch"] == 16  # the article's defaults: v5.0's yolov5s
    assert Path(plan.model_source) == bundled_model_yaml("yolov5s-v5.0.yaml")
    assert plan.overrides["box"] == 0.05 and plan.overrides["obj"] == 1.0 and plan.overrides["iou"] == 0.6
    assert Path(plan.overrides["data"]).is_file()


def test_scheduler_flag_and_implied_cawb(tiny_shapes):
    cos_hyp = str(REPO_ROOT / "hyp" / "hyp.scratch-cos.yaml")
    assert plan_run(data=str(tiny_shapes), hyp=cos_hyp, cawb_steps=[5]).overrides["cawb"] is True
    assert plan_run(data=str(tiny_shapes), hyp=str(ARTICLE_CAWB), scheduler="cos").overrides["cawb"] is False


def test_relative_project_is_the_working_directorys_wherever_it_is_set(tiny_shapes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert plan_run(data=str(tiny_shapes)).overrides["project"] == str(tmp_path / "runs" / "train")  # the default
    assert plan_run(data=str(tiny_shapes), project="mine").overrides["project"] == str(tmp_path / "mine")
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text(ARTICLE_CAWB.read_text() + "\nproject: from-hyp\n")
    assert plan_run(data=str(tiny_shapes), hyp=str(hyp)).overrides["project"] == str(tmp_path / "from-hyp")


def test_bundled_hyp_files_by_short_name(tiny_shapes):
    for name in ("scratch-cos", "hyp.scratch-cos", "hyp.scratch-cos.yaml"):
        assert plan_run(data=str(tiny_shapes), hyp=name).overrides["cawb"] is False
    steps = plan_run(data=str(tiny_shapes), hyp="scratch-cawb").overrides["cawb_steps"]
    assert steps == load_hyp(ARTICLE_CAWB)["cawb_steps"]


def test_no_arguments_plans_the_offline_demo():
    plan = plan_run()
    overrides = plan.overrides
    assert plan.model_source == "yolov5n.yaml" and overrides["device"] == "cpu" and overrides["imgsz"] == 128
    assert overrides["cawb"] is True and overrides["optimizer"] == "SGD"
    assert 0 < overrides["cawb_steps"][0] < overrides["cawb_steps"][1] < overrides["epochs"]  # restarts inside
    assert Path(overrides["data"]).is_file()
    assert Path(EMBEDDED_DEFAULTS["data"]).is_file()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--cawb-step-scale", "-1"], "cawb_step_scale=-1.0 is invalid"),
        (["--cawb-lf-min", "3"], "cawb_lf_min=3.0 is invalid"),
        (["--cawb-lf", "nowhere:decay"], "cannot import module 'nowhere'"),
        (["--epochs", "0"], "--epochs 0 is invalid"),
        (["--imgsz", "8"], "--imgsz 8 is invalid"),
        (["--batch-size", "2.5"], "--batch-size 2.5 is invalid"),
        (["--scheduler", "cos", "--cawb-steps", "3"], "--scheduler cos contradicts --cawb-steps"),
        (["momentun=0.9"], "unknown key 'momentun' (did you mean 'momentum'?)"),
        (["--cfg", "yolov5q.yaml"], "--cfg yolov5q.yaml: model yaml not found"),
        (["--weights", "missing.pt"], "--weights missing.pt: not found (cawb never downloads weights"),
        (["--data", "no/such/data.yaml"], "--data no/such/data.yaml: not found: no such file, nor a bundled data name"),
        (["--data", "coco8.yaml", "--cfg", "yolov5n.yaml"], "coco8.yaml: dataset not found: path: coco8 is in none"),
        (["--resume", "no/such/last.pt"], "--resume no/such/last.pt: no such checkpoint"),
        (["--hyp", "no/such/hyp.yaml"], "--hyp no/such/hyp.yaml: not found: no such file, nor a bundled hyp name (bundled: "),
        (["--hyp", "scratch-cawbb"], "--hyp scratch-cawbb: not found: no such file"),
        (["--cfg", "yolov5n-v5.0.yaml", "box=7.5"], "command line: box=7.5 is ultralytics' loss gain"),
        (["--cfg", "yolov5n.yaml", "obj=1.0"], "command line: obj=1.0 is YOLOv5 v5.0's loss gain"),
        (["--cfg", "yolov5n-v5.0.yaml", "anchor_t=0.5"], "anchor_t=0.5 is invalid: it must be a number > 1"),
    ],
)
def test_bad_input_fails_fast_with_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--project", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing was created: refused before any run started


V5_UNKNOWN_MODULE = ("nc: 3\nanchors: [[10, 13, 16, 30, 33, 23]]\nbackbone:\n  - [-1, 1, Focus, [16, 3]]\n"
                     "  - [-1, 1, Conv3, [32, 3, 2]]\nhead:\n  - [[1], 1, Detect, [nc, anchors]]\n")


@pytest.mark.parametrize("make,argv,message", [
    (lambda d: (d / "m.yaml").write_text(V5_UNKNOWN_MODULE), ["--cfg", "{d}/m.yaml"],
     "--cfg {d}/m.yaml: layer 1 module 'Conv3' is unknown: a YOLOv5 yaml may use Focus, "),
    (lambda d: (d / "m.yaml").write_bytes(b"\x00\x01"), ["--cfg", "{d}/m.yaml"], "--cfg {d}/m.yaml: is binary"),
    (lambda d: (d / "m.yaml").write_text("backbone: [\n"), ["--cfg", "{d}/m.yaml"], "line 2: not valid YAML"),
    (lambda d: None, ["--cfg", "yolov5s.pt"], "--cfg yolov5s.pt: is weights, not a model yaml; give weights as --weights"),
    (lambda d: (d / "w.pt").mkdir(), ["--weights", "{d}/w.pt"], "--weights {d}/w.pt: is a directory"),
    (lambda d: (d / "w.pt").write_bytes(b""), ["--weights", "{d}/w.pt"], "the file is empty"),
    (lambda d: (d / "w.yaml").write_text("nc: 3\n"), ["--weights", "{d}/w.yaml"], "expected a .pt file"),
    (lambda d: (d / "h.yaml").write_text("lr0: 0.01\ncache: rma\n"), ["--hyp", "{d}/h.yaml"],
     "{d}/h.yaml: cache='rma' is invalid: it must be true (or ram), disk or false"),
    (lambda d: None, ["optimizer=sgdd"], "command line: optimizer='sgdd' is invalid: it must be one of Adam, "),
    (lambda d: None, ["task=segment"], "task='segment' cannot be given as key=value"),
    (lambda d: None, ["--device", "7"], "--device 7: Invalid CUDA 'device=7' requested"),  # no GPU 7 anywhere here
    (lambda d: None, ["--cawb-lf", "math:sqrt"], "cawb_lf='math:sqrt': custom lf math.sqrt(x=0, "),
])
def test_bad_model_files_and_values_fail_before_anything_is_built(make, argv, message, tmp_path, capsys):
    make(tmp_path)
    project = tmp_path / "runs"
    assert main([arg.format(d=tmp_path) for arg in argv] + ["--project", str(project)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message.format(d=tmp_path) in error and error.count("\n") == 1, error
    assert not project.exists()


def test_misspelled_key_in_hyp_file(tmp_path, capsys):
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text("lr0: 0.01\ncawb_step_scal: 0.5\n")
    assert main(["--hyp", str(hyp), "--project", str(tmp_path / "runs")]) == 2
    assert "unknown key 'cawb_step_scal' (did you mean 'cawb_step_scale'?)" in capsys.readouterr().err


def test_hyp_file_cannot_take_over_data_or_model(tmp_path, capsys):
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text("lr0: 0.01\ndata: coco.yaml\n")
    assert main(["--hyp", str(hyp)]) == 2
    assert "data cannot be set in a hyp file" in capsys.readouterr().err


def test_resume_refuses_new_training_settings_and_unreadable_files(tmp_path, capsys):
    fake = tmp_path / "last.pt"
    fake.write_bytes(b"not a checkpoint")
    assert main(["--resume", str(fake), "--cawb-steps", "5"]) == 2
    assert "only takes --device" in capsys.readouterr().err
    assert main(["--resume", str(fake)]) == 2
    assert "is not a checkpoint (the file starts with" in capsys.readouterr().err


@pytest.mark.compat
@pytest.mark.slow
def test_end_to_end_run_prints_results_and_map(tiny_shapes, tmp_path, capsys, monkeypatch):
    # A relative --project is the working directory's (ultralytics alone would put it under runs/detect/), and a
    # bundled hyp file can be named by its short name.
    monkeypatch.chdir(tmp_path)
    # The hyp file's restarts (4, 11 of 20 epochs) fall outside a 3-epoch run: said again in the final summary.
    code = main(["--data", str(tiny_shapes), "--cfg", "yolov5n.yaml", "--hyp", "shapes-cawb",
                 "--epochs", "3", "--img", "64", "--batch-size", "8", "--device", "cpu",
                 "--project", "proj", "--name", "e2e", "val=False"])
    assert code == 0
    captured = capsys.readouterr()
    out = captured.out
    run = tmp_path / "proj" / "e2e"
    assert f"results: {run}\n" in out and "mAP50: " in out and "mAP50-95: " in out
    assert "warning: " in captured.err and "restart epoch(s) 4, 11 fall outside this 3-epoch run" in captured.err
    assert (run / "lr.png").is_file() and (run / "weights" / "best.pt").is_file()
    # A finished run has nothing to resume: one line, not an assertion from deep inside ultralytics.
    assert main(["--resume", str(run / "weights" / "last.pt")]) == 2
    assert "already finished" in capsys.readouterr().err


def test_weights_alone_are_the_model_and_cfg_with_weights_builds_the_yaml(tiny_shapes, tmp_path):
    from ultralytics import YOLO

    weights = tmp_path / "start.pt"
    YOLO("yolov5n.yaml").save(weights)
    alone = plan_run(data=str(tiny_shapes), weights=str(weights))
    assert alone.model_source == str(weights) and alone.weights is None
    both = plan_run(data=str(tiny_shapes), cfg="yolov5n.yaml", weights=str(weights))
    assert both.model_source == "yolov5n.yaml" and both.weights == weights


def test_v5_0_yamls_by_name_or_path_and_ultralytics_own_stay_available(tiny_shapes, tmp_path):
    copy = tmp_path / "mine.yaml"
    copy.write_text(bundled_model_yaml("yolov5n-v5.0.yaml").read_text())
    by_name = plan_run(data=str(tiny_shapes), cfg="yolov5n-v5.0.yaml")
    by_path = plan_run(data=str(tiny_shapes), cfg=str(copy))
    assert Path(by_name.model_source) == bundled_model_yaml("yolov5n-v5.0.yaml") and by_path.model_source == str(copy)
    assert by_name.overrides["anchor_t"] == by_path.overrides["anchor_t"] == 4.0  # v5.0's recipe for v5.0 models
    stock = plan_run(data=str(tiny_shapes), cfg="yolov5s.yaml")
    assert stock.model_source == "yolov5s.yaml" and "obj" not in stock.overrides and "box" not in stock.overrides


def test_a_v5_0_hyp_file_with_an_anchor_free_model_stops_naming_the_file(tmp_path, capsys):
    hyp = tmp_path / "hyp.v5.yaml"
    hyp.write_text("lr0: 0.01\nbox: 0.05\nobj: 1.0\ncls: 0.5\nanchor_t: 4.0\n")
    assert main(["--hyp", str(hyp), "--cfg", "yolov5n.yaml", "--project", str(tmp_path / "runs")]) == 2
    error = capsys.readouterr().err
    assert f"{hyp}: box=0.05, obj=1.0, cls=0.5 are YOLOv5 v5.0's loss gains" in error and error.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_help_explains_every_flag():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "train_cawb.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--data", "--cfg", "--weights", "--hyp", "--epochs", "--batch-size", "--imgsz", "--device",
                 "--workers", "--project", "--name", "--exist-ok", "--seed", "--resume", "--scheduler",
                 "--cawb-steps", "--cawb-step-scale", "--cawb-epoch-scale", "--cawb-epoch-scale-mode", "--cawb-lf",
                 "--cawb-lf-min"):
        assert flag in result.stdout
    text = " ".join(result.stdout.split())
    assert "yolov5s-v5.0.yaml" in text and "not part of v5.0" in text


def test_exist_ok_help_numbers_runs_as_ultralytics_does(tmp_path):
    from ultralytics.utils.files import increment_path

    (tmp_path / "exp").mkdir()
    second = increment_path(tmp_path / "exp").name  # what ultralytics names the next run
    help_text = " ".join(build_parser().format_help().split())
    assert second == "exp-2" and f"({second}, exp-3, ..." in help_text


def test_exist_ok_on_a_directory_holding_a_run_is_refused(tmp_path, capsys):
    run = tmp_path / "runs" / "exp"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"finished work")
    (run / "results.csv").write_text("epoch\n1\n")
    before = {p: p.read_bytes() for p in (run / "weights" / "best.pt", run / "results.csv")}
    assert main(["--project", str(tmp_path / "runs"), "--name", "exp", "--exist-ok"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --exist-ok: {run} holds a run (weights/best.pt, results.csv)") and \
        error.count("\n") == 1
    assert {p: p.read_bytes() for p in before} == before and sorted(run.rglob("*")) == sorted(
        [run / "weights", *before])
    (run / "weights" / "best.pt").unlink()
    (run / "results.csv").unlink()
    plan = plan_run(project=str(tmp_path / "runs"), name="exp", exist_ok=True)  # an emptied one may be reused
    assert plan.overrides["exist_ok"] is True


def test_restarts_outside_the_run_are_refused_when_given_and_noted_when_from_the_hyp_file(tiny_shapes):
    hyp = str(REPO_ROOT / "hyp" / "hyp.shapes-cawb.yaml")  # cawb_steps [4, 11] of 20 epochs, warmup 1
    plan = plan_run(data=str(tiny_shapes), hyp=hyp, epochs=8)
    assert plan.overrides["cawb_steps"] == [4, 11]
    assert plan.notes == [f"{hyp}: restart epoch(s) 11 fall outside this 8-epoch run (only warmup_epochs 1 < s < "
                          "epochs - 1 = 7 count: a restart shows from the epoch after it) and are ignored; the "
                          "schedule has restarts at 4"]
    assert plan_run(data=str(tiny_shapes), hyp=hyp).notes == []
    for steps in ([3, 8], [1]):  # given explicitly: at the end, at the warmup's end
        with pytest.raises(ValueError, match=r"^cawb_steps: restart epoch\(s\) .* fall outside this 8-epoch run"):
            plan_run(data=str(tiny_shapes), hyp=hyp, epochs=8, cawb_steps=steps)
    scaled = plan_run(refuse_restarts_outside=False, data=str(tiny_shapes), hyp=hyp, epochs=8, cawb_steps=[3, 8])
    assert scaled.notes and "8 fall outside" in scaled.notes[0]  # compare's scaled restarts: noted, not refused



# --- ultralytics' conventions: runs_dir, the resume line, its own resume, its detection models -----------------


def test_runs_go_to_ultralytics_runs_dir_unless_a_project_is_given(tiny_shapes, tmp_path, monkeypatch):
    from ultralytics.utils import SETTINGS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(SETTINGS, "runs_dir", str(tmp_path / "all-runs"))  # as 'yolo settings runs_dir=...' sets it
    assert plan_run(data=str(tiny_shapes)).overrides["project"] == str(tmp_path / "all-runs" / "train")
    assert plan_run(data=str(tiny_shapes), project="mine").overrides["project"] == str(tmp_path / "mine")
    with pytest.raises(InputFileNotFoundError, match=f"no last.pt found under {tmp_path / 'all-runs'};"):
        plan_run(resume=True)


def test_the_resume_line_is_the_command_that_ran_typed_to_work_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    assert rerun_command("train_cawb.py") == f"python {REPO_ROOT / 'train_cawb.py'}"  # a clone's script
    assert rerun_command(shutil.which("cawb-train")) == "cawb-train"  # the installed command the shell finds
    other = tmp_path / "other-env" / "bin" / "cawb-train"
    assert rerun_command(other) == str(other)  # another environment's: its own path
    assert rerun_command(REPO_ROOT / "cawb" / "cli" / "train.py") == "python -m cawb.cli.train"

    def interrupted(config):  # Ctrl-C after an epoch, as train() reports it
        raise TrainingInterrupted(tmp_path / "run" / "weights" / "last.pt")

    monkeypatch.setattr(train_cli, "train", interrupted)
    monkeypatch.setattr(train_cli, "plan_run", lambda **options: None)
    monkeypatch.setattr(sys, "argv", ["train_cawb.py"])
    assert main([]) == 130
    line = capsys.readouterr().err.splitlines()[-1].strip()
    assert line == f"python {REPO_ROOT / 'train_cawb.py'} --resume {tmp_path / 'run' / 'weights' / 'last.pt'}"
    version = subprocess.run(line.split()[:2] + ["--version"], cwd=tmp_path, capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("cawb ")  # the command runs from elsewhere too


@pytest.mark.slow
def test_ultralytics_own_resume_refuses_a_cawb_run_and_leaves_it_to_cawb_train(tiny_shapes, tmp_path):
    def stop_after_first_epoch(trainer):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as interrupted:
        train_module.train(callbacks={"on_fit_epoch_end": stop_after_first_epoch}, data=str(tiny_shapes),
                           cfg="yolov5n.yaml", hyp="shapes-cawb", epochs=3, imgsz=64, batch=8, device="cpu",
                           workers=0, project=str(tmp_path), name="run")
    last = interrupted.value.last
    kept = {path: path.read_bytes() for path in last.parent.iterdir()}
    yolo = subprocess.run([sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()", "train",
                           "resume", f"model={last}"], cwd=tmp_path, capture_output=True, text=True)
    assert yolo.returncode != 0
    assert "SyntaxError: " in yolo.stderr and re.search(r"'cawb_steps' is not a valid YOLO argument", yolo.stderr)
    assert {path: path.read_bytes() for path in last.parent.iterdir()} == kept  # weights and resume state untouched
    assert plan_run(resume=str(last)).resume == last  # cawb-train --resume still takes it


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"])
def test_yolov8_yolo11_and_yolo26_train_with_cawb(cfg, tiny_shapes, tmp_path, capsys):
    # 2 epochs, no warmup, a restart at 0.5: epoch 1 is trained on the second cycle
    code = main(["--data", str(tiny_shapes), "--cfg", cfg, "--hyp", "shapes-cawb", "--epochs", "2", "--img", "64",
                 "--batch-size", "8", "--device", "cpu", "--workers", "0", "--cawb-steps", "0.5", "--noval",
                 "--noplots", "--project", str(tmp_path), "--name", "run", "warmup_epochs=0"])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    schedule = CawbSchedule(epochs=2, restart_epochs=[0.5], step_scale=0.7, epoch_scale=4.0, lf_min=0.35)
    assert schedule.restart_epochs == (0.5,)
    assert [float(row["lr/pg0"]) for row in rows] == pytest.approx([0.01 * schedule(0), 0.01 * schedule(1)])
    assert (tmp_path / "run" / "weights" / "last.pt").is_file()
