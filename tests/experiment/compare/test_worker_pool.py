"""compare.py --jobs and --shard: worker processes, device slots, locks between processes, Ctrl-C, and results
that do not depend on how the runs were spread (tiny runs: yolov5n, 64 px, 2 arms x 1 seed, CPU, 1 thread each)."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cawb.experiment.compare import compare, shard_runs
from cawb.experiment.compare.model import Run
from cawb.experiment.compare.processes import PROGRESS_FILE, RUN_LOG, Slot, deal_devices, default_threads
from cawb.utils.live_view import LiveView
from cawb.utils.locks import pid_alive

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "compare.py"
COS, CAWB = "hyp.shapes-cos", "hyp.shapes-cawb"
RUNS = (f"{COS}-seed0", f"{CAWB}-seed0")
# One CPU thread per run whatever --jobs is: on the CPU the thread count changes float sums (see cpu_threads).
TINY = dict(preset="cpu", seeds=[0], epochs=2, imgsz=64, batch=8, threads=1, overrides={"plots": False})
TINY_FLAGS = ["--preset", "cpu", "--seeds", "0", "--imgsz", "64", "--batch", "8", "--threads", "1"]


def cli(tiny_shapes, project, *flags, epochs=2):
    return [sys.executable, str(SCRIPT), *TINY_FLAGS, "--epochs", str(epochs), "--data", str(tiny_shapes),
            "--project", str(project), *flags, "plots=False"]


@pytest.mark.parametrize("device,jobs,expected,idle", [
    ("0,1,2,3", 4, ["0", "1", "2", "3"], None),
    ("0,1,2,3", 2, ["0,1", "2,3"], None),  # two GPUs per run: ultralytics' DDP inside each run
    ("0,1,2,3", 8, ["0", "1", "2", "3", "0", "1", "2", "3"], None),  # two runs per GPU
    ("0,1,2", 2, ["0", "1"], "GPU 2 left idle"),
    ("0", 3, ["0", "0", "0"], None),
])
def test_the_device_list_is_dealt_out_to_the_slots(device, jobs, expected, idle):
    slots, notes = deal_devices(device, jobs)
    assert [slot.device for slot in slots] == expected and all(slot.threads is None for slot in slots)
    assert (idle in notes[0]) if idle else notes == []


def test_cpu_slots_split_the_threads():
    slots, _ = deal_devices("cpu", 2, cpus=16)
    assert slots == [Slot(0, "cpu", 8), Slot(1, "cpu", 8)]
    assert [slot.threads for slot in deal_devices("cpu", 4, cpus=16)[0]] == [4] * 4
    assert [slot.threads for slot in deal_devices("cpu", 3, threads=2, cpus=16)[0]] == [2] * 3
    assert default_threads(4, cpus=2) == 1 and default_threads(1, cpus=64) == 8  # at least 1, at most 8
    assert deal_devices("", 2, cuda_devices=2)[0] == [Slot(0, "0"), Slot(1, "1")]  # "": the visible GPUs
    assert deal_devices("", 2, cuda_devices=0, cpus=4)[0] == [Slot(0, "cpu", 2), Slot(1, "cpu", 2)]
    with pytest.raises(ValueError, match="--jobs 0 is invalid"):
        deal_devices("cpu", 0)


def test_shards_partition_the_plan():
    arms = {label: SimpleNamespace(label=label) for label in "ab"}  # a run's arm: only its label matters here
    runs = [Run(arm=arms[label], seed=seed, run_dir=Path(f"{label}{seed}")) for label in "ab" for seed in range(3)]
    for n in range(1, 8):
        parts = [shard_runs(runs, (k, n)) for k in range(1, n + 1)]
        assert sorted((id(run) for part in parts for run in part)) == sorted(id(run) for run in runs)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [(run.arm.label, run.seed) for run in shard_runs(runs, (1, 2))] == [("a", 0), ("a", 2), ("b", 1)]


@pytest.fixture(scope="module")
def sequential(tiny_shapes, tmp_path_factory):
    """The reference: --jobs 1, in this process."""
    project = tmp_path_factory.mktemp("jobs1") / "project"
    result = compare(log=[].append, data=str(tiny_shapes), project=str(project), **TINY)
    assert result.exit_code == 0
    return project


@pytest.fixture(scope="module")
def parallel(tiny_shapes, tmp_path_factory):
    """--jobs 2 in worker processes: first with the cos run failing as it starts, then rerun (the cos run trains)."""
    project = tmp_path_factory.mktemp("jobs2") / "project"

    def fail_cos(trainer):  # travels to the workers with cloudpickle
        if Path(trainer.save_dir).name.startswith(COS):
            raise RuntimeError("simulated failure\nsecond line")

    def hold_each_epoch(trainer):  # the view refreshes every 0.5 s: a tiny epoch must stay on screen that long
        import time

        time.sleep(1.5)

    first_view, first_log = io.StringIO(), []
    first = compare(callbacks={"on_pretrain_routine_start": fail_cos, "on_fit_epoch_end": hold_each_epoch},
                    log=first_log.append, jobs=2,
                    live=LiveView(first_view, interactive=False), data=str(tiny_shapes), project=str(project), **TINY)
    view, log = io.StringIO(), []
    second = compare(log=log.append, jobs=2, live=LiveView(view, interactive=False), data=str(tiny_shapes),
                     project=str(project), **TINY)
    return SimpleNamespace(project=project, first=first, first_view=first_view.getvalue(), first_log=first_log,
                           second=second, view=view.getvalue(), log=log)


@pytest.mark.slow
def test_a_failed_worker_is_reported_and_the_other_runs_finish(parallel):
    first = parallel.first
    assert first.exit_code == 1 and [(run.arm.label, run.status) for run in first.runs] == [(COS, "failed"),
                                                                                      (CAWB, "finished")]
    log_file = parallel.project / "runs" / f"{COS}-seed0" / RUN_LOG
    assert first.runs[0].error == f"RuntimeError: simulated failure (log: {log_file})"
    assert "Traceback" in log_file.read_text() and "second line" in log_file.read_text()  # the whole story, there
    assert f"{COS} seed 0: FAILED: RuntimeError: simulated failure" in parallel.first_view
    summary = json.loads((parallel.project / "summary.json").read_text())
    assert summary["failed"] == [f"{COS} seed 0: {first.runs[0].error}"]

    second = parallel.second  # the rerun retries the failed run only
    assert second.exit_code == 0 and [run.action for run in second.runs] == ["train", "skip"]
    assert (parallel.project / "table-2.md").is_file()


@pytest.mark.slow
def test_the_live_view_shows_every_run_and_each_worker_logs_to_its_run_dir(parallel):
    lines = parallel.first_view.splitlines()
    assert any(line.strip().startswith(f"{CAWB} seed 0") and "epoch    1/2" in line for line in lines)
    assert any(line.strip().startswith(f"{CAWB} seed 0") and "finished: mAP_0.5" in line for line in lines)
    for name in RUNS:
        run_dir = parallel.project / "runs" / name
        log = (run_dir / RUN_LOG).read_text()
        assert "==== compare: training on device cpu, 1 CPU threads" in log and "Epoch" in log  # ultralytics' own log
        progress = json.loads((run_dir / PROGRESS_FILE).read_text())
        assert progress["epochs"] == 2 and not pid_alive(progress["pid"])
    assert not list((parallel.project / "locks").glob("*.lock"))


def per_run_results(project):
    """Everything a run produced that must not depend on how runs were spread over processes."""
    import torch

    results = {}
    for name in RUNS:
        run_dir = project / "runs" / name
        evaluation = json.loads((run_dir / "eval.json").read_text())
        for weights in ("final", "best"):
            for key in ("weights", "predictions"):
                evaluation[weights].pop(key)
        csv_rows = [line.split(",") for line in (run_dir / "results.csv").read_text().splitlines()]
        time_column = csv_rows[0].index("time")
        weights = torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)["model"]
        results[name] = (evaluation, [row[:time_column] + row[time_column + 1:] for row in csv_rows],
                         weights.state_dict())
    return results


def assert_same_results(project, reference):
    import torch

    for name, (evaluation, rows, weights) in per_run_results(project).items():
        expected = per_run_results(reference)[name]
        assert evaluation == expected[0] and rows == expected[1], name
        assert weights.keys() == expected[2].keys()
        assert all(torch.equal(weights[key], expected[2][key]) for key in weights), name  # bit for bit


@pytest.mark.slow
def test_jobs_2_gives_the_same_per_run_results_as_jobs_1(sequential, parallel):
    assert_same_results(parallel.project, sequential)


@pytest.mark.slow
def test_two_shards_started_together_finish_every_run_once_and_one_writes_the_table(tiny_shapes, tmp_path,
                                                                                     sequential):
    project = tmp_path / "project"
    processes = [subprocess.Popen(cli(tiny_shapes, project, "--shard", f"{k}/2"), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for k in (1, 2)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    for name, (shard, output) in zip(RUNS, enumerate(outputs, start=1)):
        assert f"shard {shard}/2: this process takes 1 of the 2 runs" in output
    for name in RUNS:
        trained = [output for output in outputs if f"seed 0: training ({project / 'runs' / name})" in output]
        assert len(trained) == 1, name  # each run trained by exactly one process, once
    writers = [output for output in outputs if "compare: report written" in output]
    assert len(writers) == 1
    other = next(output for output in outputs if output is not writers[0])
    # it finished first (no report yet), or at the same moment as the writer (it finds the report written or
    # being written)
    assert any(words in other for words in ("no report yet", "the report of these results was written by",
                                            "the report is being written by"))
    assert (project / "table.md").is_file() and not (project / "table-2.md").exists()
    assert json.loads((project / "locks" / "report.json").read_text())["table_md"] == str(project / "table.md")
    assert not list((project / "locks").glob("*.lock")) and not list((project / "runs").glob("*.aside-*"))
    assert_same_results(project, sequential)

    again = compare(log=[].append, report_only=True, data=str(tiny_shapes), project=str(project), **TINY)
    assert again.exit_code == 0 and (project / "table-2.md").is_file()  # --report-only writes one every time


@pytest.mark.slow
def test_report_only_lists_the_missing_runs(tiny_shapes, sequential, tmp_path):
    import shutil

    project = tmp_path / "project"
    shutil.copytree(sequential / "runs" / f"{CAWB}-seed0", project / "runs" / f"{CAWB}-seed0")
    log = []
    result = compare(log=log.append, report_only=True, data=str(tiny_shapes), project=str(project), **TINY)
    assert result.exit_code == 1  # written, but a planned run is missing
    assert f"1 of 2 planned runs are missing from the report: {COS} seed 0 (not started)" in log[-1]
    assert f"MISSING (not in this table): {COS} seed 0: not started" in (project / "table.md").read_text()
    assert not (project / "runs" / f"{COS}-seed0").exists()  # nothing trained


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_rerunning_resumes_them(tiny_shapes, tmp_path):
    project, epochs = tmp_path / "project", 4
    command = cli(tiny_shapes, project, "--jobs", "2", epochs=epochs)
    # its own session, as a terminal's foreground job: the Ctrl-C below reaches the runner only, not pytest
    runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    progress_files = [project / "runs" / name / PROGRESS_FILE for name in RUNS]

    def epoch(path):
        try:
            return json.loads(path.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            return 0

    deadline = time.time() + 240
    while min(map(epoch, progress_files)) < 2 and runner.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # both runs are past their first epoch: each has a last.pt to resume from
    os.killpg(runner.pid, signal.SIGINT)
    out, err = runner.communicate(timeout=180)
    assert runner.returncode == 130, (out, err)
    assert "rerun the same command to continue" in err and err.count("continues from") == 2
    for path in progress_files:
        assert not pid_alive(json.loads(path.read_text())["pid"])  # every worker stopped
    assert not list((project / "locks").glob("*.lock"))

    log = []  # the same command again (in this process: one interpreter start less)
    rerun = compare(log=log.append, jobs=2, live=LiveView(io.StringIO(), interactive=False), data=str(tiny_shapes),
                    project=str(project), **{**TINY, "epochs": epochs})
    assert rerun.exit_code == 0 and "2 to resume" in log[0]
    for name in RUNS:
        run_dir = project / "runs" / name
        epochs_done = [int(line.split(",")[0]) for line in (run_dir / "results.csv").read_text().splitlines()[1:]]
        assert epochs_done == list(range(1, epochs + 1))  # each epoch once, also one trained again on resume
        log = (run_dir / RUN_LOG).read_text()
        assert "==== compare: training" in log and "==== compare: resuming from weights/last.pt" in log


@pytest.mark.slow
def test_a_full_disk_in_one_worker_stops_every_worker_with_one_error(tiny_shapes, tmp_path):
    import errno

    def cos_finds_the_disk_full(trainer):  # travels to the workers with cloudpickle
        if Path(trainer.save_dir).name.startswith(COS):
            raise OSError(errno.ENOSPC, "No space left on device", str(Path(trainer.save_dir) / "results.csv"))
        time.sleep(60)  # the other run is still working when the runner stops it

    started = time.monotonic()
    with pytest.raises(OSError) as stopped:
        compare(callbacks={"on_pretrain_routine_start": cos_finds_the_disk_full}, log=[].append, jobs=2,
                live=LiveView(io.StringIO(), interactive=False), data=str(tiny_shapes), project=str(tmp_path),
                **{**TINY, "epochs": 1})
    assert stopped.value.errno == errno.ENOSPC and stopped.value.filename.endswith(f"{COS}-seed0/results.csv")
    assert time.monotonic() - started < 50  # the other worker was stopped, not waited for
    assert not list((tmp_path / "locks").glob("*.lock")) and not (tmp_path / "table.md").exists()


@pytest.mark.slow
def test_preemption_sigterm_then_sigkill_loses_nothing_and_a_rerun_trains_each_epoch_once(tiny_shapes, tmp_path):
    """A job scheduler's pre-emption: SIGTERM to every process of the job (the runner and its workers, each in a
    session of its own), then SIGKILL before they are done stopping."""
    project, epochs = tmp_path / "project", 2
    runner = subprocess.Popen(cli(tiny_shapes, project, "--jobs", "2", epochs=epochs), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    progress_files = [project / "runs" / name / PROGRESS_FILE for name in RUNS]

    def progress(path):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    deadline = time.time() + 240
    while min(progress(path).get("epoch", 0) for path in progress_files) < 2 and runner.poll() is None \
            and time.time() < deadline:
        time.sleep(0.05)  # both runs are past their first epoch
    job = [runner.pid, *(progress(path)["pid"] for path in progress_files)]
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for pid in job:
            try:
                os.kill(pid, signal_number)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
    runner.wait(timeout=60)
    deadline = time.time() + 30
    while any(pid_alive(pid) for pid in job) and time.time() < deadline:
        time.sleep(0.05)  # the killed workers, orphans now, until init has reaped them
    assert not any(pid_alive(pid) for pid in job)

    log = []  # the same command again (in this process: one interpreter start less)
    rerun = compare(log=log.append, jobs=2, live=LiveView(io.StringIO(), interactive=False), data=str(tiny_shapes),
                    project=str(project), **{**TINY, "epochs": epochs})
    assert rerun.exit_code == 0, log
    for name in RUNS:
        run_dir = project / "runs" / name
        epochs_done = [int(line.split(",")[0]) for line in (run_dir / "results.csv").read_text().splitlines()[1:]]
        assert epochs_done == list(range(1, epochs + 1))
        assert not [path.name for path in (run_dir / "weights").iterdir() if ".tmp-" in path.name]
    assert not list((project / "locks").glob("*.lock"))
