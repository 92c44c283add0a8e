"""cawb/experiment/tune.py and scripts/tune.py: the restart rule, the pruner, the sampler, best_hyp.yaml, and real
tiny studies (yolov5n, 64 px, 1-2 epochs, CPU) that finish, continue, share a storage, and are interrupted."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState, create_trial

from cawb.cli import plot_lr as plot_lr_cli
from cawb.cli import train as train_cli
from cawb.cli import tune as tune_cli
from cawb.experiment.presets import COMPARE_PRESETS
from cawb.experiment.tune import TuneInterrupted, _fit_restarts, _move_aside, _objective, plan_tune, tune
from cawb.experiment.tune_report import OUTPUT_NAMES, PROCESS_ATTR
from cawb.experiment.tune_settings import CPU_PRESET_MODEL, DEFAULT_PRUNE_AFTER, PRESETS, TuneSettings, resolve_settings
from cawb.experiment.tune_space import build_space, effective_warmup, restart_slots
from cawb.experiment.tune_study import (
    PRUNER_STARTUP_TRIALS,
    RestartGracePruner,
    TrialSeededTPESampler,
    fail_dead_trials,
    in_restart_grace,
    make_pruner,
    record_process,
)
from cawb.training import config as config_module
from cawb.training import hyp as hyp_module
from cawb.utils.locks import this_host

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "tune.py"
SHAPES_HYP = REPO_ROOT / "hyp" / "hyp.shapes-cawb.yaml"
PNG = b"\x89PNG\r\n\x1a\n"

optuna.logging.set_verbosity(optuna.logging.ERROR)


def tiny(data, project, **flags):
    """2 epochs at 64 px with no warmup, so that epoch 1 can be a restart."""
    return dict(data=str(data), hyp=str(SHAPES_HYP), cfg="yolov5n.yaml", epochs=2, imgsz=64, batch=8, device="cpu",
                workers=0, project=str(project), overrides={"warmup_epochs": 0}, **flags)


def trials_of(project, study="cawb-tune"):
    return optuna.load_study(study_name=study, storage=f"sqlite:///{Path(project).absolute() / 'study.db'}").get_trials()


# --- the restart rule and pruning --------------------------------------------------------------------------


def test_restart_grace_covers_the_reports_of_the_epochs_after_a_restart():
    # A restart at epoch 4: epoch 5 is the first at the new peak; its report is the one after 6 epochs.
    assert [step for step in range(1, 12) if in_restart_grace(step, [4], grace=2)] == [6, 7]
    assert [step for step in range(1, 20) if in_restart_grace(step, [4, 10], grace=1)] == [6, 12]
    assert not any(in_restart_grace(step, [4], grace=0) for step in range(20))
    assert not in_restart_grace(None, [4], grace=2)


def synthetic_study(pruner, trials=3):
    """Complete trials (three) whose metric climbs 0.1 per epoch (the median at step t is t / 10)."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for _ in range(trials):
        study.add_trial(create_trial(value=1.0, intermediate_values={t: t / 10 for t in range(1, 11)},
                                     state=TrialState.COMPLETE))
    return study


def prune_decisions(study, sequence, restarts):
    trial = study.ask()
    trial.set_user_attr("restart_epochs", restarts)
    decisions = {}
    for step, value in enumerate(sequence, start=1):
        trial.report(value, step)
        decisions[step] = trial.should_prune()
    return decisions


def test_median_pruner_waits_out_the_dip_after_a_restart_then_prunes():
    # On the median up to step 4, then flat: behind the median from step 5 on.
    sequence = [0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4]
    pruner = RestartGracePruner(optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0), restart_grace=2)
    study = synthetic_study(pruner)
    without_restart = prune_decisions(study, sequence, restarts=[])
    assert [step for step, prune in without_restart.items() if prune] == [5, 6, 7, 8]
    # A restart at epoch 3: the reports after 5 and 6 epochs are its grace; pruning resumes at 7.
    with_restart = prune_decisions(study, sequence, restarts=[3])
    assert [step for step, prune in with_restart.items() if prune] == [7, 8]
    # A restart at epoch 4: behind at 5 already (before the restart shows), spared at 6 and 7.
    with_later_restart = prune_decisions(study, sequence, restarts=[4])
    assert [step for step, prune in with_later_restart.items() if prune] == [5, 8]


def test_no_trial_is_pruned_before_prune_after_of_its_epochs():
    behind = [0.0] * 10  # behind the median at every epoch of a 10-epoch study
    for prune_after, first in ((0.0, 1), (0.5, 5), (0.75, 8)):
        pruner = make_pruner(True, restart_grace=0, warmup_epochs=1, epochs=10, prune_after=prune_after)
        study = synthetic_study(pruner, trials=PRUNER_STARTUP_TRIALS)
        decisions = prune_decisions(study, behind, restarts=[])
        assert [step for step, prune in decisions.items() if prune] == list(range(first, 11)), prune_after
    assert DEFAULT_PRUNE_AFTER == 0.5 and PRESETS["cpu"].get("prune_after") is None  # the preset keeps the default


def test_sampler_is_seeded_per_trial_number():
    def params(seed, trials):
        study = optuna.create_study(direction="maximize", sampler=TrialSeededTPESampler(seed))
        drawn = []
        for _ in range(trials):
            trial = study.ask()
            drawn.append(build_space().suggest(trial, {"warmup_epochs": 1.0}, 50).hyp)
            study.tell(trial, 0.5)
        return drawn

    first, again = params(3, 3), params(3, 3)
    assert first == again  # reproducible
    assert first[0] != first[1] != first[2]  # trial numbers differ, so do the draws
    assert params(4, 1)[0] != first[0]


def test_a_directory_in_a_trials_way_is_moved_aside_not_overwritten(tmp_path):
    old = tmp_path / "trials" / "trial-0"
    (old / "weights").mkdir(parents=True)
    (old / "weights" / "best.pt").write_bytes(b"finished work")
    lines = []
    _move_aside(old, lines.append)
    moved = [path for path in old.parent.iterdir() if path.name.startswith("trial-0.aside-")]
    assert not old.exists() and len(moved) == 1 and (moved[0] / "weights" / "best.pt").read_bytes() == b"finished work"
    assert str(moved[0]) in lines[0]


# --- settings, presets and bad input -----------------------------------------------------------------------


def test_cpu_preset_follows_compares_cpu_preset():
    fields = set(TuneSettings.__dataclass_fields__)
    shared = {key: value for key, value in COMPARE_PRESETS["cpu"].items()
              if key not in ("arms", "seeds", "project", *CPU_PRESET_MODEL)}
    assert shared and all(PRESETS["cpu"][key] == value for key, value in shared.items())
    assert all(PRESETS["cpu"][key] == value for key, value in CPU_PRESET_MODEL.items())
    assert set(PRESETS["cpu"]) <= fields  # a key compare adds that the tuner does not know fails here
    assert Path(PRESETS["cpu"]["hyp"]).is_file()
    settings = resolve_settings("cpu", trials=3, epochs=2)
    assert settings.trials == 3 and settings.epochs == 2 and settings.cfg == "yolov5n.yaml"


def test_the_readme_example_searches_restart_positions():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "python scripts/tune.py --preset cpu --trials 4 --epochs 6 " in readme
    warmup = effective_warmup(yaml.safe_load(Path(PRESETS["cpu"]["hyp"]).read_text())["warmup_epochs"], 6)
    space, notes = _fit_restarts(build_space(), warmup, 6)
    assert restart_slots(6, warmup) == (2, 4) and notes == [] and space.max_restarts() == 3  # epochs 2, 3 and 4
    space, notes = _fit_restarts(build_space(), effective_warmup(warmup, 2), 2)  # the old example's 2 epochs
    assert space.max_restarts() == 0 and "no restarts are searched" in notes[0]


def bad_cases(tiny_shapes, tmp_path):
    base = ["--data", str(tiny_shapes), "--hyp", str(SHAPES_HYP), "--trials", "2", "--epochs", "2", "--imgsz", "64",
            "--device", "cpu", "--cfg", "yolov5n.yaml"]
    space = tmp_path / "space.yaml"
    space.write_text("cawb_lf_min: {low: 0.5, high: 0.1}\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return [
        (["--trials", "2"], "give --data"),
        (["--data", str(tiny_shapes)], "give --trials"),
        ([*base, "--trials", "0"], "--trials 0 is invalid"),
        ([*base, "--restart-grace", "-1"], "--restart-grace -1 is invalid"),
        ([*base, "--seed", "-1"], "--seed -1 is invalid"),
        ([*base, "--device", "0,1"], "one worker per GPU"),
        ([*base, "--storage", "not a url"], "is not a database URL"),
        ([*base, "--storage", f"sqlite:///{tmp_path}/no/such/dir/s.db"], "does not exist"),
        ([*base, "--storage", "sqlite://"], "in-memory database keeps nothing"),
        ([*base, "--space", str(tmp_path / "missing.yaml")], "no such file"),
        ([*base, "--space", str(space)], "low 0.5 > high 0.1"),
        ([*base, "lr0=abc"], "lr0='abc' is invalid"),
        ([*base, "val=False"], "val=False is not possible"),
        ([*base, "epochs=3"], "use the flag (--epochs)"),
        ([*base, "cawb_step_scale=0.5"], "contradicts the search space"),
        ([*base, "momentun=0.9"], "did you mean 'momentum'"),
        ([*base, "--hyp", str(tmp_path)], "is a directory"),
        ([*base, "--hyp", str(tmp_path / "missing.yaml")], "missing.yaml: not found"),
        ([*base, "--cfg", "yolov5q.yaml"], "model yaml not found"),
        ([*base, "--data", str(tmp_path / "missing.yaml")], "not found"),
        ([*base, "--project", str(a_file)], "is a file, not a directory"),
        ([*base, "--project", str(a_file / "sub")], "is a file, not a directory"),
    ]


def test_bad_input_is_refused_in_one_line_before_anything_is_created(tiny_shapes, tmp_path, capsys):
    project = tmp_path / "project"
    for argv, message in bad_cases(tiny_shapes, tmp_path):
        args = argv if "--project" in argv else [*argv, "--project", str(project)]
        assert tune_cli.main(args) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and error.count("\n") == 1, (argv, error)
        assert not project.exists(), argv


def test_a_project_directory_of_another_study_or_with_foreign_files_is_refused(tiny_shapes, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "tune.json").write_text(json.dumps({"study_name": "other", "storage": "sqlite:////x.db"}))
    with pytest.raises(ValueError, match="holds study 'other'"):
        plan_tune(resolve_settings(trials=2, **tiny(tiny_shapes, project)))
    (project / "tune.json").unlink()
    (project / "best_hyp.yaml").write_text("lr0: 0.02\n")
    with pytest.raises(ValueError, match="not written by a tuner study"):
        plan_tune(resolve_settings(trials=2, **tiny(tiny_shapes, project)))
    assert (project / "best_hyp.yaml").read_text() == "lr0: 0.02\n"


@pytest.mark.slow
def test_bad_input_through_the_script_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--preset", "cpu", "--trials", "2", "lr0=abc",
                             "--project", str(tmp_path / "p")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["error: command line: lr0='abc' is invalid: it must be a number "
                                                  "in [0, 1]"]
    assert not (tmp_path / "p").exists()


# --- real tiny studies -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pruning_stops_training_cleanly_and_keeps_the_epoch_reached(tiny_shapes, tmp_path):
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    plan = plan_tune(resolve_settings(trials=1, **tiny(tiny_shapes, tmp_path / "p")))
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(_objective(plan, {}, log=lambda line: None), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED and trial.user_attrs["epochs_reached"] == 1
    assert list(trial.intermediate_values) == [1]
    run_dir = Path(trial.user_attrs["run_dir"])
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert len(rows) == 1 and (run_dir / "weights" / "last.pt").is_file()  # stopped after epoch 1 of 2, intact


def calls_of(monkeypatch, function):
    """Record every call of ``function`` made through any cawb module that holds it (where it is defined and where
    it was imported by name), still calling the real one."""
    calls = []

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return function(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name == "cawb" or name.startswith("cawb."):
            for attribute, value in list(vars(module).items()):
                if value is function:
                    monkeypatch.setattr(module, attribute, recording)
    return calls


@pytest.mark.slow
def test_a_study_reads_and_checks_its_base_hyp_once_and_a_trial_plans_nothing_again(tiny_shapes, tmp_path,
                                                                                    monkeypatch):
    reads = calls_of(monkeypatch, hyp_module.read_hyp_file)
    plans = calls_of(monkeypatch, config_module.plan_run)
    plan = plan_tune(resolve_settings(trials=1, **{**tiny(tiny_shapes, tmp_path / "p"), "epochs": 1}))
    assert [Path(args[0]).resolve() for args, _ in reads] == [SHAPES_HYP.resolve()] and len(plans) == 1
    study = optuna.create_study(direction="maximize")
    study.optimize(_objective(plan, {}, log=lambda line: None), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE
    assert len(reads) == 1 and len(plans) == 1  # the trial trained the planned base run with its values set


@pytest.fixture(scope="module")
def study_runs(tiny_shapes, tmp_path_factory):
    """A 4-trial study; a rerun toward 5 interrupted by Ctrl-C in its trial; the rerun that finishes it; and one
    more rerun with nothing left to do."""
    project = tmp_path_factory.mktemp("tune") / "project"
    logs = {}
    first = tune(trials=4, log=logs.setdefault("first", []).append, **tiny(tiny_shapes, project))
    first_trials = trials_of(project)
    first_files = {name: (project / name).read_bytes() for name in OUTPUT_NAMES}

    def ctrl_c(trainer):
        raise KeyboardInterrupt

    with pytest.raises(TuneInterrupted) as interrupted:
        tune(trials=5, callbacks={"on_train_epoch_start": ctrl_c}, log=logs.setdefault("interrupted", []).append,
             **tiny(tiny_shapes, project))
    after_interrupt = trials_of(project)
    second = tune(trials=5, log=logs.setdefault("second", []).append, **tiny(tiny_shapes, project))
    third = tune(trials=5, log=logs.setdefault("third", []).append, **tiny(tiny_shapes, project))
    return dict(project=project, first=first, first_trials=first_trials, first_files=first_files,
                interrupted=interrupted.value, after_interrupt=after_interrupt, second=second, third=third,
                logs=logs, final_trials=trials_of(project))


@pytest.mark.slow
def test_a_study_finishes_and_writes_every_output(study_runs):
    project, first = study_runs["project"], study_runs["first"]
    assert first.exit_code == 0 and first.ran == 4
    assert [t.state for t in study_runs["first_trials"]] == [TrialState.COMPLETE] * 4
    for name in OUTPUT_NAMES:
        assert name in study_runs["first_files"], name
        if name.endswith(".png"):
            assert study_runs["first_files"][name].startswith(PNG), name
    rows = list(csv.DictReader(study_runs["first_files"]["trials.csv"].decode().splitlines()))
    assert [row["number"] for row in rows] == ["0", "1", "2", "3"] and {row["state"] for row in rows} == {"COMPLETE"}
    assert all(row["epochs_reached"] == "2" and row["fitness"] != "" for row in rows)
    for trial in study_runs["first_trials"]:  # every trial's restarts are integer epochs inside the run
        assert all(0 < s < 2 for s in trial.user_attrs["restart_epochs"])
        assert (project / "trials" / f"trial-{trial.number}" / "results.csv").is_file()
    best = yaml.safe_load(study_runs["first_files"]["best_hyp.yaml"])
    best_trial = max(study_runs["first_trials"], key=lambda t: (t.value, -t.number))
    assert best["cawb"] is True and best["epochs"] == 2 and best["warmup_epochs"] == 0
    assert best["cawb_steps"] == best_trial.user_attrs["restart_epochs"]
    assert best["cawb_step_scale"] == best_trial.params["cawb_step_scale"]
    header = study_runs["first_files"]["best_hyp.yaml"].decode().splitlines()[:2]
    assert "study 'cawb-tune'" in header[0] and f"trial {best_trial.number}: fitness" in header[1]
    assert any(line.startswith("best: fitness") for line in first.summary)


@pytest.mark.slow
def test_interrupting_a_worker_counts_no_unfinished_trial(study_runs):
    assert "rerun the same command" in str(study_runs["interrupted"])
    states = [t.state for t in study_runs["after_interrupt"]]
    assert states == [TrialState.COMPLETE] * 4 + [TrialState.FAIL]
    assert study_runs["after_interrupt"][4].user_attrs["error"] == "interrupted"


@pytest.mark.slow
def test_a_rerun_continues_to_the_total_and_no_further(study_runs):
    second, third = study_runs["second"], study_runs["third"]
    assert second.ran == 1 and second.counts["COMPLETE"] + second.counts["PRUNED"] == 5
    assert [t.number for t in study_runs["final_trials"]] == [0, 1, 2, 3, 4, 5]  # the failed 4 was not reused
    assert third.ran == 0 and "already has 5" in study_runs["logs"]["third"][-1]
    assert third.counts == second.counts


@pytest.mark.slow
def test_best_hyp_trains_with_train_cawb_and_draws_with_plot_lr(study_runs, tiny_shapes, tmp_path):
    best = study_runs["project"] / "best_hyp.yaml"
    assert plot_lr_cli.main(["--hyp", str(best), "--out", str(tmp_path / "lr.png")]) == 0
    assert train_cli.main(["--data", str(tiny_shapes), "--hyp", str(best), "--cfg", "yolov5n.yaml", "--imgsz", "64",
                           "--batch-size", "8", "--device", "cpu", "--project", str(tmp_path), "--name", "best",
                           "plots=False"]) == 0
    assert (tmp_path / "best" / "weights" / "last.pt").is_file()


def test_a_running_trial_whose_process_on_this_host_is_gone_is_failed_at_once(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, elsewhere, mine = study.ask(), study.ask(), study.ask()
    dead.set_user_attr(PROCESS_ATTR, {"host": this_host(), "pid": gone.pid})
    elsewhere.set_user_attr(PROCESS_ATTR, {"host": "another-host", "pid": gone.pid})  # left to the heartbeat
    record_process(mine)  # alive
    assert [trial.number for trial in fail_dead_trials(study)] == [dead.number]
    assert [trial.state for trial in study.get_trials()] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    assert study.get_trials()[0].user_attrs["error"] == f"its process ({this_host()} pid {gone.pid}) was gone"


@pytest.mark.slow
def test_two_workers_on_one_sqlite_storage_share_the_total(tiny_shapes, tmp_path):
    project = tmp_path / "shared"
    command = [sys.executable, str(SCRIPT), "--data", str(tiny_shapes), "--hyp", str(SHAPES_HYP), "--cfg",
               "yolov5n.yaml", "--epochs", "1", "--imgsz", "64", "--batch-size", "8", "--device", "cpu",
               "--workers", "0", "--trials", "2", "--project", str(project), "--storage",
               f"sqlite:///{tmp_path / 'shared.db'}"]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    trials = optuna.load_study(study_name="cawb-tune", storage=f"sqlite:///{tmp_path / 'shared.db'}").get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    # Together they stop at the total; two workers starting at the same moment may each begin one more.
    assert 2 <= len(finished) <= 3 and len(finished) == len(trials)
    ran = [int(line.split("this run: ")[1].split(" ")[0]) for output in outputs for line in output.splitlines()
           if "this run: " in line]
    assert sum(ran) == len(trials)
    assert (project / "best_hyp.yaml").is_file()


@pytest.mark.slow
def test_a_preempted_worker_leaves_no_trial_running_and_a_rerun_finishes_the_study(tiny_shapes, tmp_path):
    """A job scheduler's pre-emption: SIGTERM, then SIGKILL, of a worker that does not get to stop in between
    (stopped, as a hung one: its trial stays RUNNING in the study)."""
    project = tmp_path / "p"
    command = [sys.executable, str(SCRIPT), "--data", str(tiny_shapes), "--hyp", str(SHAPES_HYP), "--cfg",
               "yolov5n.yaml", "--epochs", "2", "--imgsz", "64", "--batch-size", "8", "--device", "cpu",
               "--workers", "0", "--trials", "1", "--project", str(project), "warmup_epochs=0"]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = project / "trials" / "trial-0" / "results.csv"
    deadline = time.time() + 240
    while not (results.is_file() and results.read_text().count("\n") >= 2) and worker.poll() is None \
            and time.time() < deadline:
        time.sleep(0.05)  # trial 0 has finished its first epoch
    for signal_number in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
        worker.send_signal(signal_number)
        time.sleep(0.1)
    worker.wait(timeout=60)
    assert [t.state for t in trials_of(project)] == [TrialState.RUNNING]

    lines = []
    result = tune(trials=1, log=lines.append, **tiny(tiny_shapes, project))
    assert any(line.startswith(f"tune: trial 0 was running in {this_host()} pid {worker.pid}, which is gone") for
               line in lines), lines
    trials = trials_of(project)
    assert trials[0].state == TrialState.FAIL  # at once, not after the storage's 3-minute heartbeat grace
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert result.exit_code == 0 and len(finished) == 1
    for trial in finished:
        rows = (Path(trial.user_attrs["run_dir"]) / "results.csv").read_text().splitlines()[1:]
        assert [int(float(row.split(",")[0])) for row in rows] == [1, 2]
    assert not [line for line in lines if "raise --trials" in line or "to go" in line]


@pytest.mark.slow
def test_a_full_disk_stops_the_study_at_the_first_trial_with_one_error(tiny_shapes, tmp_path):
    import errno

    def disk_full(trainer):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(trainer.save_dir) / "results.csv"))

    with pytest.raises(OSError) as stopped:
        tune(trials=3, callbacks={"on_pretrain_routine_start": disk_full}, log=[].append,
             **tiny(tiny_shapes, tmp_path / "p"))
    assert stopped.value.errno == errno.ENOSPC and stopped.value.filename.endswith("results.csv")
    assert [t.state for t in trials_of(tmp_path / "p")] == [TrialState.FAIL]  # not three failed trials


@pytest.mark.slow
def test_failing_trials_are_recorded_and_a_worker_stops_after_three_in_a_row(tiny_shapes, tmp_path):
    def boom(trainer):
        raise RuntimeError("out of memory, say")

    lines = []
    result = tune(trials=2, callbacks={"on_pretrain_routine_start": boom}, log=lines.append,
                  **tiny(tiny_shapes, tmp_path / "p"))
    trials = trials_of(tmp_path / "p")
    assert [t.state for t in trials] == [TrialState.FAIL] * 3  # failures do not count toward the total
    assert all(t.user_attrs["error"] == "RuntimeError: out of memory, say" for t in trials)
    assert result.exit_code == 1 and result.best is None and "3 trials in a row failed" in result.summary[-1]
    assert (tmp_path / "p" / "trials.csv").is_file() and not (tmp_path / "p" / "best_hyp.yaml").exists()
