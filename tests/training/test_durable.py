"""cawb/training/durable.py: no fault at any moment loses a checkpoint, and a resumed run has one row per epoch.

The slow tests: real tiny runs (64 px, 2 batches an epoch, 3 epochs) of train_cawb.py in child processes
(tests/training/fault_child.py) are stopped inside the write of each checkpoint file: SIGKILL while the temporary
file is half written, a full disk, a read-only remount, the run directory removed. Each that leaves a run ends with
a resume that finishes it with exactly the epochs 1, 2, 3.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cawb.training.checkpoints import read_checkpoint
from cawb.training.durable import ended_marker, truncate_results
from cawb.training.exact_resume import state_path
from cawb.training.train import TrainingInterrupted, train

CHILD = Path(__file__).with_name("fault_child.py")
SETTINGS = dict(cfg="yolov5n.yaml", epochs=3, imgsz=64, batch=8, workers=0, device="cpu", val=False, plots=False,
                save_period=1, seed=0)


def face_args(data, project, name) -> list[str]:
    """train_cawb.py's arguments for the run SETTINGS describe."""
    flags = {"data": data, "cfg": "yolov5n.yaml", "epochs": 3, "img": 64, "batch-size": 8, "workers": 0,
             "device": "cpu", "seed": 0, "project": project, "name": name}
    return [*(item for key, value in flags.items() for item in (f"--{key}", str(value))),
            "val=False", "plots=False", "save_period=1"]


def test_resuming_cuts_results_to_the_checkpoints_epochs_and_drops_a_row_cut_short(tmp_path):
    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,loss\n1,0.5,2.0\n2,1.0,1.5\n3,1.5,1.2\n4,2.0")
    assert truncate_results(csv, 3)
    assert csv.read_text() == "epoch,time,loss\n1,0.5,2.0\n2,1.0,1.5\n3,1.5,1.2\n"
    assert truncate_results(csv, 1) and csv.read_text() == "epoch,time,loss\n1,0.5,2.0\n"
    assert not truncate_results(csv, 1) and not truncate_results(tmp_path / "none.csv", 1)


def epochs_in(run_dir: Path) -> list[int]:
    lines = (run_dir / "results.csv").read_text().splitlines()[1:]
    return [int(float(line.split(",")[0])) for line in lines]


def temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "weights").iterdir() if ".tmp-" in p.name)


def child(when: str, target: str, marker: Path | str, args: list[str], count: int = 1) -> subprocess.Popen:
    """fault_child.py: train_cawb.py ``args`` with a fault inside the ``count``-th write of ``target``."""
    env = {**os.environ, "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(CHILD), when, target, str(count), str(marker), "--", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when_blocked(process: subprocess.Popen, marker: Path) -> None:
    """SIGKILL ``process`` once it is blocked inside the aimed write (it writes ``marker`` then)."""
    deadline = time.monotonic() + 240
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate()
    assert marker.exists(), f"the child never reached the aimed write (exit {process.returncode}): {stderr}"


def assert_finished_with_every_epoch_once(run_dir: Path):
    last = run_dir / "weights" / "last.pt"
    result = train(resume=str(last))
    assert result.save_dir == run_dir
    assert epochs_in(run_dir) == [1, 2, 3]
    assert temporaries(run_dir) == []
    assert not state_path(last).exists()
    for name in ("last.pt", "best.pt"):
        checkpoint = read_checkpoint(run_dir / "weights" / name)
        assert checkpoint is not None and checkpoint["epoch"] == -1 and checkpoint["optimizer"] is None, name


@pytest.fixture(scope="module")
def stopped(tiny_shapes, tmp_path_factory) -> Path:
    """A run stopped as by Ctrl-C once epoch 1 is saved: its run directory (each test works on a copy)."""
    def stop(trainer):
        raise KeyboardInterrupt

    project = tmp_path_factory.mktemp("stopped")
    with pytest.raises(TrainingInterrupted):
        train(data=str(tiny_shapes), project=str(project), name="run", callbacks={"on_fit_epoch_end": stop},
              **SETTINGS)
    return project / "run"


#: (how, file): a kill inside each write of a checkpoint file when the stopped run is resumed: in epoch 2 (the
#: checkpoints and the exact-resume state) or in the final step, which strips last.pt and best.pt.
KILLS = [("write", "last.pt"), ("write", "best.pt"), ("write", "epoch1.pt"), ("write", "last.pt.resume-state"),
         ("strip", "last.pt"), ("strip", "best.pt")]


@pytest.fixture(scope="module")
def killed(stopped, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Each KILLS case on its own copy of the stopped run, all at once: the run directory after the SIGKILL."""
    root = tmp_path_factory.mktemp("killed")

    def kill(case: tuple[str, str]) -> Path:
        run_dir = root / "-".join(case) / "run"
        shutil.copytree(stopped, run_dir)
        marker = run_dir.parent / "blocked"
        kill_when_blocked(child(*case, marker, ["--resume", str(run_dir / "weights" / "last.pt")]), marker)
        return run_dir

    with ThreadPoolExecutor(max_workers=len(KILLS)) as pool:
        return dict(zip(KILLS, pool.map(kill, KILLS)))


@pytest.mark.slow
@pytest.mark.compat
@pytest.mark.parametrize("how, name", KILLS, ids=["-".join(case) for case in KILLS])
def test_a_kill_inside_a_checkpoint_write_loses_nothing(how, name, killed):
    run_dir = killed[how, name]
    weights = run_dir / "weights"
    assert temporaries(run_dir) == [f".{name}.tmp-" + temporaries(run_dir)[0].rsplit("-", 1)[1]]  # the kill was there
    if name == "epoch1.pt":
        assert not (weights / name).exists()  # no previous version, and no half of the new one
    elif name == "last.pt.resume-state":
        import torch

        assert torch.load(weights / name, weights_only=False)["epoch"] == 0  # the previous epoch's state, whole
    else:
        checkpoint = read_checkpoint(weights / name)
        assert checkpoint is not None, f"{name} cannot be loaded"
        if how == "write":
            assert checkpoint["epoch"] == 0  # epoch 1's, as before the write
        else:  # the run's final step: stripping last.pt, then best.pt
            assert checkpoint["optimizer"] is not None  # not stripped yet, and whole
            assert not state_path(weights / "last.pt").exists()  # gone once the last epoch was saved
    if how == "write" and name == "last.pt":
        assert epochs_in(run_dir) == [1, 2]  # epoch 2's row was written before its checkpoint
    assert_finished_with_every_epoch_once(run_dir)


@pytest.mark.slow
def test_a_kill_in_the_final_step_of_an_early_ended_run_resumes_to_the_finish_not_to_more_epochs(tmp_path,
                                                                                                   tiny_shapes):
    """``time`` (hours) ends the training after its first epoch of three, as early stopping does: last.pt then holds
    epoch 1 of 3 with its optimizer, like a run killed mid-training, and only the marker tells the two apart."""
    run_dir = tmp_path / "runs" / "run"
    marker = tmp_path / "blocked"
    kill_when_blocked(child("strip", "last.pt", marker,
                            [*face_args(tiny_shapes, tmp_path / "runs", "run"), "time=0.000001"]), marker)
    last = run_dir / "weights" / "last.pt"
    assert read_checkpoint(last)["epoch"] == 0 and read_checkpoint(last)["train_args"]["epochs"] == 3
    assert ended_marker(last).is_file()
    result = train(resume=str(last))
    assert result.save_dir == run_dir and epochs_in(run_dir) == [1]  # finished, not trained further
    assert not ended_marker(last).exists() and temporaries(run_dir) == []
    for name in ("last.pt", "best.pt"):
        checkpoint = read_checkpoint(run_dir / "weights" / name)
        assert checkpoint is not None and checkpoint["epoch"] == -1 and checkpoint["optimizer"] is None, name


@pytest.fixture
def small_disk(tmp_path):
    """A directory on a file system of its own that a test can fill (a 160 MB tmpfs, where mounting is allowed),
    and the child's way to fill it: the file to grow until the disk is full, or ``rlimit`` (no mount: the child's
    file-size limit is cut instead, which fails the write the same way)."""
    place = tmp_path / "disk"
    place.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(place)],
                             capture_output=True).returncode == 0 if shutil.which("mount") else False
    try:
        yield place, (str(place / "filler") if mounted else "rlimit")
    finally:
        if mounted:
            subprocess.run(["umount", str(place)], check=True)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_freed(small_disk, tiny_shapes):
    place, fill = small_disk
    run_dir = place / "runs" / "run"
    process = child("full", "last.pt", fill, face_args(tiny_shapes, place / "runs", "run"), count=2)  # epoch 2
    _, stderr = process.communicate(timeout=300)
    last = run_dir / "weights" / "last.pt"
    cause = "no space left on device" if fill != "rlimit" else "file too large"
    assert process.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert f"{last}: {cause}" in stderr and f"--resume {last}" in stderr, stderr
    assert read_checkpoint(last)["epoch"] == 0  # epoch 1's, whole
    assert temporaries(run_dir) == []
    if fill != "rlimit":
        Path(fill).unlink()  # space freed
    assert_finished_with_every_epoch_once(run_dir)


@pytest.fixture
def own_mount(tmp_path):
    """A directory on a tmpfs of its own, which a test may remount read-only (where mounting is allowed)."""
    place = tmp_path / "mount"
    place.mkdir()
    if not shutil.which("mount") or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(place)],
                                                   capture_output=True).returncode != 0:
        pytest.skip("this machine does not let the tests mount a file system (the read-only case needs one)")
    try:
        yield place
    finally:
        subprocess.run(["umount", str(place)], check=True)


@pytest.mark.slow
def test_a_read_only_remount_mid_run_is_one_line_and_the_run_resumes_once_writable(own_mount, tiny_shapes):
    run_dir = own_mount / "runs" / "run"
    process = child("readonly", "last.pt", own_mount, face_args(tiny_shapes, own_mount / "runs", "run"), count=2)
    _, stderr = process.communicate(timeout=300)
    last = run_dir / "weights" / "last.pt"
    assert process.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert f"{last}: read-only file system" in stderr and f"--resume {last}" in stderr, stderr
    assert read_checkpoint(last)["epoch"] == 0  # epoch 1's, whole
    subprocess.run(["mount", "-o", "remount,rw", str(own_mount)], check=True)
    assert_finished_with_every_epoch_once(run_dir)


@pytest.mark.slow
def test_a_vanished_output_directory_is_one_line_naming_the_file(tmp_path, tiny_shapes):
    run_dir = tmp_path / "runs" / "run"
    process = child("vanish", "last.pt", run_dir, face_args(tiny_shapes, tmp_path / "runs", "run"), count=2)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert str(run_dir / "weights") in stderr and "no such file or directory" in stderr.lower(), stderr
    assert not run_dir.exists()  # nothing written back in its place


@pytest.mark.slow
def test_a_refused_final_strip_names_the_file_and_leaves_the_checkpoint_whole(stopped, tmp_path):
    """ultralytics' strip_optimizer under a 1 MiB file-size limit (torch's writer then fails with a RuntimeError
    that does not say why): the stripping cawb's trainer runs names the file and the cause."""
    import errno
    import resource

    from ultralytics.utils.torch_utils import strip_optimizer

    from cawb.training.durable import durable_strip

    last = tmp_path / "weights" / "last.pt"
    last.parent.mkdir()
    shutil.copy(stopped / "weights" / "last.pt", last)
    before = last.read_bytes()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG rather than the signal's default: death
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, limits[1]))
    try:
        with pytest.raises(OSError) as refused:
            durable_strip(strip_optimizer, last)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert (refused.value.errno, refused.value.filename) == (errno.EFBIG, str(last))
    assert last.read_bytes() == before and temporaries(tmp_path) == []
