"""cawb/experiment/compare (compare()) and scripts/compare.py: real tiny comparisons (yolov5n, 64 px, 2 epochs, CPU).

The mAP of such tiny models is ~0, so the pycocotools/ultralytics agreement checked here is weak; the meaningful
agreement test, on a model that learnt something, is tests/experiment/test_evaluate.py::
test_pycocotools_agrees_with_ultralytics_on_trained_weights (same tolerance).
"""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cawb.cli import compare as compare_cli
from cawb.experiment.compare import (
    PRESETS,
    ComparisonInterrupted,
    compare,
    describe_plan,
    plan_comparison,
    read_epoch_metrics,
    resolve_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "compare.py"
PNG = b"\x89PNG\r\n\x1a\n"
# As tests/experiment/test_evaluate.py: the two interpolate the precision-recall curve differently (measured gap 0.002-0.017).
MAP_TOLERANCE = 0.03
COS, CAWB = "hyp.shapes-cos", "hyp.shapes-cawb"
REPORT = ("table.md", "table.csv", "summary.json", "lr.png", "map.png")



def tiny(data, project, **flags):
    """The cpu preset shrunk to the tiny_shapes data: 2 epochs at 64 px, batch 8, one seed, no plots."""
    return dict(preset="cpu", data=str(data), project=str(project), seeds=[0], epochs=2, imgsz=64, batch=8,
                overrides={"plots": False}, **flags)


def mtimes(directory):
    return {path: path.stat().st_mtime_ns for path in Path(directory).rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def resumed(tiny_shapes, tmp_path_factory):
    """A 2-arm x 1-seed comparison stopped by Ctrl-C in the second run's first epoch, then rerun to the end."""
    project = tmp_path_factory.mktemp("compare") / "project"

    def ctrl_c_in_second_run(trainer):
        if Path(trainer.save_dir).name == f"{CAWB}-seed0" and trainer.epoch == 0:
            raise KeyboardInterrupt

    first_log = []
    with pytest.raises(ComparisonInterrupted) as interrupted:
        compare(callbacks={"on_fit_epoch_end": ctrl_c_in_second_run}, log=first_log.append,
                **tiny(tiny_shapes, project))
    runs = project / "runs"
    before = SimpleNamespace(first=mtimes(runs / f"{COS}-seed0"),
                             csv=(runs / f"{CAWB}-seed0" / "results.csv").read_text(),
                             report=[name for name in REPORT if (project / name).exists()],
                             eval_second=(runs / f"{CAWB}-seed0" / "eval.json").exists(),
                             last_second=(runs / f"{CAWB}-seed0" / "weights" / "last.pt").is_file())
    log = []
    result = compare(log=log.append, **tiny(tiny_shapes, project))
    return SimpleNamespace(project=project, runs=runs, interrupted=interrupted.value, first_log=first_log,
                           before=before, result=result, log=log)


@pytest.mark.compat
@pytest.mark.slow
def test_interrupted_run_resumes_and_finished_run_is_skipped(resumed):
    assert "rerun the same command" in str(resumed.interrupted)
    assert str(resumed.interrupted.last).endswith(f"{CAWB}-seed0/weights/last.pt")
    assert resumed.before.last_second and not resumed.before.eval_second and not resumed.before.report

    assert "1 skipped (finished), 1 to resume" in resumed.log[0]
    assert [run.action for run in resumed.result.runs] == ["skip", "resume"]
    assert [run.status for run in resumed.result.runs] == ["finished", "finished"]
    assert mtimes(resumed.runs / f"{COS}-seed0") == resumed.before.first  # not a file of the first run touched

    second = resumed.runs / f"{CAWB}-seed0"
    csv_after = (second / "results.csv").read_text().splitlines()
    # The epoch-1 row is the one written before Ctrl-C (a retrain would have rewritten it), epoch 2 followed.
    assert csv_after[:2] == resumed.before.csv.splitlines()[:2]
    assert read_epoch_metrics(second / "results.csv")["epoch"] == [1, 2]
    assert (second / "eval.json").is_file() and resumed.result.exit_code == 0


@pytest.mark.slow
def test_every_output_is_written_with_its_fields(resumed):
    project = resumed.project
    for name in REPORT:
        assert (project / name).is_file(), name
    for name in ("lr.png", "map.png"):
        assert (project / name).read_bytes()[:8] == PNG

    summary = json.loads((project / "summary.json").read_text())
    assert summary["settings"]["epochs"] == 2 and summary["settings"]["seeds"] == [0]
    assert summary["official_source"] == "pycocotools"
    assert set(summary["arms"]) == {COS, CAWB}
    cawb = summary["arms"][CAWB]
    # The file's restarts [4, 11] of 20 epochs moved to 2 epochs: [0, 1], both then outside (warmup 1, end 2).
    assert cawb["restarts_hyp"] == [4, 11] and cawb["restarts_used"] == [0, 1] and cawb["restarts_scaled"]
    assert cawb["restarts_effective"] == [] and cawb["article"] == {"map50": 0.302, "map50_95": 0.165}
    for arm in summary["arms"].values():
        for weights in ("final", "best"):
            for metric in ("map50", "map50_95"):
                for source in ("pycocotools", "ultralytics"):
                    spread = arm[weights][metric][source]
                    assert spread["n"] == 1 and spread["std"] is None and 0 <= spread["mean"] <= 1
    (difference,) = summary["differences"]
    assert difference["label"] == "CAWB - cos" and difference["final"]["map50"]["pycocotools"]["n"] == 1
    assert "cannot be told" in difference["final"]["map50"]["verdict"]
    assert [(run["arm"], run["status"]) for run in summary["runs"]] == [(COS, "finished"), (CAWB, "finished")]
    for run in summary["runs"]:
        assert Path(run["run_dir"]).is_dir() and run["epochs_trained"] == 2 and run["best_epoch"] in (1, 2)
        assert Path(run["final"]["weights"]).name == "last.pt" and Path(run["best"]["weights"]).name == "best.pt"
    assert any("scaled to [0, 1]" in note for note in summary["settings"]["notes"])
    assert f"{CAWB}: restarts 0, 1 ignored: the run would not make them (only warmup_epochs 1 < s < epochs - 1 = 1 " \
           "count)" in " ".join(summary["settings"]["notes"])

    table = (project / "table.md").read_text()
    assert "pycocotools" in table and "0.294" in table and "0.302" in table and "± n/a" in table
    assert f"- {CAWB}: restarts 0, 1 ignored" in table
    assert (project / "table.csv").read_text().splitlines()[0].startswith("arm,schedule,n,final_map50_mean")


@pytest.mark.compat
@pytest.mark.slow
def test_pycocotools_and_ultralytics_numbers_agree(resumed):
    for run in resumed.result.runs:
        record = json.loads((run.run_dir / "eval.json").read_text())
        assert record == run.evaluation
        for weights in ("final", "best"):
            numbers = record[weights]
            assert len(numbers["stats"]) == 12 and numbers["stats"][1] == numbers["map50"]
            assert numbers["map50"] == pytest.approx(numbers["ultralytics_map50"], abs=MAP_TOLERANCE)
            assert numbers["map50_95"] == pytest.approx(numbers["ultralytics_map50_95"], abs=MAP_TOLERANCE)
            assert 0 <= numbers["v5_map50_95"] <= numbers["v5_map50"] <= 1  # YOLOv5 v5.0's, the article's metric
            assert Path(numbers["predictions"]).is_file()


@pytest.mark.slow
def test_an_existing_table_is_kept_unless_exist_ok(resumed, tiny_shapes, tmp_path):
    project = tmp_path / "copy"
    shutil.copytree(resumed.project, project)
    before = {name: (project / name).read_bytes() for name in REPORT}
    log = []
    result = compare(log=log.append, **tiny(tiny_shapes, project))
    assert [run.action for run in result.runs] == ["skip", "skip"]
    assert any("table-2.md" in line and "beside it" in line for line in log)
    assert {name: (project / name).read_bytes() for name in REPORT} == before
    for name in ("table-2.md", "table-2.csv", "summary-2.json", "lr-2.png", "map-2.png"):
        assert (project / name).is_file()

    compare(log=log.append, exist_ok=True, **tiny(tiny_shapes, project))
    assert not (project / "table-3.md").exists()
    assert json.loads((project / "summary.json").read_text())["outputs"]["table_md"] == str(project / "table.md")


@pytest.mark.slow
def test_runs_made_with_other_settings_are_refused(resumed, tiny_shapes):
    with pytest.raises(ValueError, match=r"made with other settings \(epochs 2 -> 3") as caught:
        plan_comparison(resolve_settings(**{**tiny(tiny_shapes, resumed.project), "epochs": 3}))
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_failed_run_is_reported_and_the_others_complete(tiny_shapes, tmp_path):
    def fail_cos(trainer):
        if Path(trainer.save_dir).name.startswith(COS):
            raise RuntimeError("simulated failure\nsecond line")

    log = []
    result = compare(callbacks={"on_pretrain_routine_start": fail_cos}, log=log.append, **tiny(tiny_shapes, tmp_path))
    assert result.exit_code == 1
    assert [(run.arm.label, run.status) for run in result.runs] == [(COS, "failed"), (CAWB, "finished")]
    assert result.runs[0].error == "RuntimeError: simulated failure"
    assert any("FAILED: RuntimeError: simulated failure" in line for line in log)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == [f"{COS} seed 0: RuntimeError: simulated failure"]
    assert summary["arms"][COS]["final"]["map50"]["pycocotools"]["n"] == 0
    assert summary["arms"][CAWB]["final"]["map50"]["pycocotools"]["n"] == 1
    assert f"FAILED: {COS} seed 0" in (tmp_path / "table.md").read_text()

    retry = compare(log=log.append, **tiny(tiny_shapes, tmp_path))  # the failure was transient: rerun retries it
    assert [run.action for run in retry.runs] == ["train", "skip"] and retry.exit_code == 0
    # the failed start left only ultralytics' args.yaml and an empty weights/: cleared, nothing to move aside
    assert not list((tmp_path / "runs").glob("*.aside-*"))


@pytest.mark.slow
def test_a_full_disk_stops_the_comparison_instead_of_failing_every_run(tiny_shapes, tmp_path):
    import errno

    def disk_full(trainer):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(trainer.save_dir) / "weights" / "last.pt"))

    with pytest.raises(OSError) as stopped:
        compare(callbacks={"on_pretrain_routine_start": disk_full}, log=[].append, **tiny(tiny_shapes, tmp_path))
    assert stopped.value.errno == errno.ENOSPC and stopped.value.filename.endswith("last.pt")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [f"{COS}-seed0"]  # the next run never started
    assert not (tmp_path / "table.md").exists()


def test_without_a_preset_the_arms_hyp_files_give_epochs_batch_and_imgsz(tiny_shapes, tmp_path):
    import yaml

    arms = []
    for name in ("hyp.shapes-cos.yaml", "hyp.shapes-cawb.yaml"):
        hyp = {**yaml.safe_load((REPO_ROOT / "hyp" / name).read_text()), "epochs": 3, "batch": 8}
        arms.append(tmp_path / name)
        arms[-1].write_text(yaml.safe_dump(hyp))
    settings = resolve_settings(data=str(tiny_shapes), arms=arms, seeds=[0], device="cpu", cfg="yolov5n.yaml",
                                project=str(tmp_path / "project"))
    plan = plan_comparison(settings)
    assert (plan.settings.epochs, plan.settings.batch, plan.settings.imgsz) == (3, 8, PRESETS["article"]["imgsz"])
    assert plan.sources == {"epochs": "the arms' hyp files", "batch": "the arms' hyp files",
                            "imgsz": "the article preset's; the arms' hyp files set none"}
    line = describe_plan(plan)[0]
    assert "3 epochs (the arms' hyp files)" in line and "batch 8 (the arms' hyp files)" in line
    assert "imgsz 640 (the article preset's; the arms' hyp files set none)" in line
    assert plan_comparison(dataclasses.replace(settings, batch=16)).settings.batch == 16  # a flag wins

    arms[1].write_text(arms[1].read_text().replace("batch: 8", "batch: 4"))
    with pytest.raises(ValueError, match=r"the arms' hyp files set different batch .*: give --batch-size"):
        plan_comparison(settings)


@pytest.mark.slow
def test_an_unreadable_last_pt_moves_the_run_aside_and_deletes_nothing(resumed, tiny_shapes, tmp_path):
    """issue 10: the runner used to rmtree a run dir whose last.pt it could not read, best.pt and user files too."""
    project = tmp_path / "project"
    run = project / "runs" / f"{COS}-seed0"
    shutil.copytree(resumed.runs / f"{COS}-seed0", run)
    (run / "eval.json").unlink()
    (run / "weights" / "last.pt").write_bytes(b"truncated")
    (run / "notes.txt").write_text("the user's own file")
    before = {path.relative_to(run): path.read_bytes() for path in run.rglob("*") if path.is_file()}

    def stop(trainer):
        raise KeyboardInterrupt

    log = []
    with pytest.raises(ComparisonInterrupted):  # stopped as soon as the new attempt starts: no training needed
        compare(callbacks={"on_pretrain_routine_start": stop}, log=log.append, **tiny(tiny_shapes, project))
    aside = run.with_name(f"{COS}-seed0.aside-1")
    assert {path.relative_to(aside): path.read_bytes() for path in aside.rglob("*") if path.is_file()} == before
    assert any("weights/last.pt cannot be read" in line and "moved aside" in line for line in log)  # in the plan
    assert any(f"moved aside to {aside} (nothing deleted)" in line for line in log)
    assert (run / "run.json").is_file() and not (run / "notes.txt").exists()  # the new attempt's own dir


@pytest.mark.slow
def test_a_corrupt_eval_json_is_named_and_the_run_evaluated_again(resumed, tiny_shapes, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(resumed.runs, project / "runs")
    record = project / "runs" / f"{COS}-seed0" / "eval.json"
    record.write_text('{"final": ')
    plan = plan_comparison(resolve_settings(**tiny(tiny_shapes, project)))
    assert [run.action for run in plan.runs] == ["evaluate", "skip"]
    assert any(str(record) in note and "evaluated again" in note for note in plan.notes)
    result = compare(log=[].append, **tiny(tiny_shapes, project))
    assert result.exit_code == 0 and [run.action for run in result.runs] == ["evaluate", "skip"]
    assert json.loads(record.read_text())["final"] == resumed.result.runs[0].evaluation["final"] | {
        "predictions": str(record.parent / "eval" / "final" / "predictions.json"),
        "weights": str(record.parent / "weights" / "last.pt")}


def test_a_corrupt_run_json_is_named_with_what_to_do(tiny_shapes, tmp_path, capsys):
    run = tmp_path / "runs" / f"{COS}-seed0"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{oops")
    code = compare_cli.main(["--preset", "cpu", "--data", str(tiny_shapes), "--project", str(tmp_path), "--seeds", "0"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert f"error: {run / 'run.json'} cannot be read" in error and "Restore it, or move" in error


def test_flags_override_the_preset():
    cpu = resolve_settings("cpu", epochs=3, seeds=[0])
    assert cpu.epochs == 3 and cpu.seeds == (0,)
    assert (cpu.cfg, cpu.imgsz, cpu.batch, cpu.device, cpu.workers) == ("yolov5n-v5.0.yaml", 128, 16, "cpu", 0)
    assert cpu.data == PRESETS["cpu"]["data"] and cpu.project == Path("runs/compare-cpu")
    article = resolve_settings(data="my.yaml", batch=32)  # no preset: the article's values fill in the rest...
    assert article.data == Path("my.yaml") and article.batch == 32
    assert (article.cfg, article.seeds) == ("yolov5s-v5.0.yaml", (0, 1, 2))
    assert article.epochs is None and article.imgsz is None  # ... but epochs and imgsz come from the arms' files
    assert PRESETS["article"]["batch"] == 16  # v5.0's default; the article does not say otherwise

    args = compare_cli.build_parser().parse_args(["--preset", "cpu", "amp=False", "--epochs", "3", "--seeds", "0"])
    assert (args.preset, args.epochs, args.seeds, args.overrides) == ("cpu", 3, [0], [("amp", False)])


def test_other_epochs_scale_the_cawb_restarts(tmp_path):
    plan = plan_comparison(resolve_settings("cpu", epochs=40, seeds=[0], project=str(tmp_path / "p")))
    cos, cawb = plan.arms
    assert cos.restarts_used is None and cawb.restarts_hyp == (4, 11)
    assert cawb.restarts_used == (8, 22) and cawb.restarts_effective == (8.0, 22.0) and cawb.epochs == 40
    assert plan.notes == ["hyp.shapes-cawb: restarts [4, 11] of 20 epochs scaled to [8, 22] of 40"]
    assert [run.action for run in plan.runs] == ["train", "train"]
    assert plan.batches_per_epoch == 16  # 256 images / batch 16
    assert not (tmp_path / "p").exists()  # planning creates nothing


def test_a_restart_the_run_would_not_make_is_not_counted(tmp_path):
    # [4, 11] of 20 epochs is [1, 2] of 3: 1 is the warmup's end, and 2 would show at epoch 3, which is not trained
    plan = plan_comparison(resolve_settings("cpu", epochs=3, seeds=[0], project=str(tmp_path / "p")))
    cawb = plan.arms[1]
    assert cawb.restarts_used == (1, 2) and cawb.restarts_effective == ()
    assert plan.notes[-1] == ("hyp.shapes-cawb: restarts 1, 2 ignored: the run would not make them (only "
                              "warmup_epochs 1 < s < epochs - 1 = 2 count)")


def _bad_hyp(tmp_path):
    path = tmp_path / "hyp.bad.yaml"
    path.write_text("lr0: 0.01\nmomentun: 0.9\n")
    return str(path)


def _no_coco_json(tiny_shapes, tmp_path):
    import yaml

    data = yaml.safe_load(Path(tiny_shapes).read_text())
    data.pop("val_json")
    data["path"] = str(Path(tiny_shapes).parent)
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--seeds", "0", "0"], "repeats a seed"),
        (["--seeds", "-1"], "--seeds -1 is invalid"),
        (["--epochs", "0"], "--epochs 0 is invalid"),
        (["--arms", "no/such/hyp.yaml"], "--arms no/such/hyp.yaml: not found: no such file, nor a bundled hyp name"),
        (["--arms", "hyp/hyp.shapes-cos.yaml", "{tmp}/hyp.shapes-cos.yaml"], "must be unique"),
        (["--arms", "{bad_hyp}"], "unknown key 'momentun' (did you mean 'momentum'?)"),
        (["--data", "no/such/data.yaml"], "--data no/such/data.yaml: not found: no such file, nor a bundled data name"),
        (["--data", "{no_json}"], "val_json and category_ids are required"),
        (["--device", "7"], "--device 7:"),
        (["--cfg", "yolov5q.yaml"], "--cfg yolov5q.yaml: model yaml not found"),
        (["epochs=3"], "epochs=3 cannot be given as key=value"),
        (["cawb_steps=[2]"], "belongs in the arm's hyp file"),
        (["val=False"], "val=False is not possible"),
        (["momentun=0.9"], "unknown key 'momentun'"),
        (["--jobs", "0"], "--jobs 0 is invalid: it must be an integer >= 1"),
        (["--jobs", "x"], "argument --jobs/-j: invalid int value: 'x'"),
        (["--shard", "3/2"], "--shard 3/2 is invalid: give K/N with 1 <= K <= N"),
        (["--shard", "0/2"], "--shard 0/2 is invalid"),
        (["--shard", "x"], "--shard x is invalid"),
        (["--threads", "0"], "--threads 0 is invalid"),
        (["--lock-timeout", "0"], "--lock-timeout 0.0 is invalid"),
        (["--effect", "0", "0.004"], "--effect 0.0 for mAP_0.5 is invalid"),
        (["--report-only"], "--report-only: no finished run under"),
        (["--jobs", "2", "--device", "0,x"], "--device 0,x"),
    ],
)
def test_bad_input_fails_before_anything_runs_with_one_line(argv, message, tiny_shapes, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    shutil.copy(REPO_ROOT / "hyp" / "hyp.shapes-cos.yaml", tmp_path / "hyp.shapes-cos.yaml")
    fill = {"tmp": str(tmp_path), "bad_hyp": _bad_hyp(tmp_path), "no_json": _no_coco_json(tiny_shapes, tmp_path)}
    argv = [arg.format(**fill) for arg in argv]
    project = tmp_path / "project"
    try:
        code = compare_cli.main(["--preset", "cpu", "--data", str(tiny_shapes), "--project", str(project), *argv]
                                if "--data" not in argv else ["--preset", "cpu", "--project", str(project), *argv])
    except SystemExit as exit:  # argparse's own checks (a flag's type)
        code = exit.code
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
    assert not project.exists()


def test_a_directory_not_made_by_compare_is_refused(tiny_shapes, tmp_path):
    (tmp_path / "runs" / f"{COS}-seed0").mkdir(parents=True)
    with pytest.raises(ValueError, match="not made by compare"):
        plan_comparison(resolve_settings(**{k: v for k, v in tiny(tiny_shapes, tmp_path).items()}))


def test_results_csv_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    from cawb.experiment.compare.rundir import best_epoch as _best_epoch

    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,metrics/mAP50(B),metrics/mAP50-95(B)\n1,1,0.1,0.05\n2,2,0.3,0.2\n2,3,0.35,0.25\n"
                   "3,4,0.4,0.25\n")
    curve = read_epoch_metrics(csv)
    assert curve == {"epoch": [1, 2, 3], "map50": [0.1, 0.35, 0.4], "map50_95": [0.05, 0.25, 0.25]}
    assert _best_epoch(curve) == 3  # a tie on mAP50-95: ultralytics rewrites best.pt, so the later epoch
    assert read_epoch_metrics(tmp_path / "missing.csv") is None


@pytest.mark.slow
def test_help_explains_every_flag_and_the_presets():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--preset", "--data", "--arms", "--seeds", "--epochs", "--cfg", "--batch-size", "--imgsz",
                 "--device", "--workers", "--project", "--exist-ok", "--jobs", "--threads", "--shard",
                 "--lock-timeout", "--report-only", "--effect", "key=value"):
        assert flag in result.stdout
    assert "data coco10k, arms scratch-cos scratch-cawb" in result.stdout
    assert "data shapes, arms shapes-cos shapes-cawb" in result.stdout
    assert "Exit status" in result.stdout and "--device 0,1,2,3\n--jobs 4 gives each run a GPU" in result.stdout
    assert "+0.008 mAP_0.5" in result.stdout


def counting(monkeypatch, module, name):
    """Wrap ``module.name`` (the real function) so that its calls are counted."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.slow
def test_each_hyp_file_is_read_and_each_arm_planned_once_and_runs_are_not_planned_again(tiny_shapes, tmp_path,
                                                                                        monkeypatch):
    from cawb.experiment.compare import execution, planning
    from cawb.training import config, train

    read = counting(monkeypatch, planning, "read_hyp_file")
    planned = counting(monkeypatch, planning, "plan_run")
    replanned = [counting(monkeypatch, module, "plan_run") for module in (config, train)]
    plan = plan_comparison(resolve_settings(**{**tiny(tiny_shapes, tmp_path), "seeds": [0, 1]}))
    assert sorted(Path(path).name for path in read) == sorted(f"{arm}.yaml" for arm in (COS, CAWB))
    assert len(planned) == 2 and len(plan.runs) == 4  # one plan per arm, shared by its runs

    run = plan.runs[0]
    config_of_run = planning.run_config(run, plan.settings)  # what execution trains: the arm's plan, reseeded
    assert config_of_run.overrides["seed"] == run.seed and config_of_run.schedule == run.arm.config.schedule
    trained = counting(monkeypatch, execution, "train")
    with execution.Claims(tmp_path, 60.0) as claims:
        assert execution.begin_run(plan, run, claims, log=lambda line: None)
        execution.execute_run(plan, run, callbacks=None)
    assert run.status == "finished" and len(trained) == 1
    assert len(read) == 2 and len(planned) == 2 and replanned == [[], []]  # nothing read or planned again
