"""Several comparison runs at once (``compare.py --jobs N``): device slots, worker processes, their progress.

Each run of a ``--jobs N`` comparison (N > 1) trains in its own process,
``python -m cawb.experiment.compare.worker SPEC``, which runs the same code as a ``--jobs 1`` run
(:func:`cawb.experiment.compare.execution.execute_run`, hence :func:`cawb.training.train.train`). The runner claims
each run (its lock names the runner and the worker; a worker whose runner is gone stops at its next batch) and
prepares its directory before starting the worker. This module holds what the runner needs around those processes:

* :func:`deal_devices`: the ``--device`` list dealt out to N slots (one GPU each, several GPUs each for DDP inside
  a run, several runs per GPU, or the CPU's threads split between runs);
* :func:`cpu_threads`: a process's CPU thread count, for torch and for ultralytics (which resets torch's count to
  its own ``NUM_THREADS`` whenever it selects the CPU);
* :class:`Worker`: one started worker process (its own session, so a terminal's Ctrl-C reaches only the runner,
  which then stops each worker with SIGINT: ultralytics sees a KeyboardInterrupt, as in a terminal);
* :func:`read_progress` / :func:`progress_callbacks`: the small ``progress.json`` a worker keeps in its run dir
  (epoch, batch, last mAP, ETA) and the ultralytics callbacks that write it; the runner's live view reads it.

Nothing here imports torch or ultralytics at module level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.checks import require_int
from cawb.utils.errors import InputError
from cawb.utils.ultralytics_compat import cpu_threads

__all__ = [
    "PROGRESS_FILE",
    "RUN_LOG",
    "Slot",
    "Worker",
    "available_cpus",
    "cpu_threads",
    "deal_devices",
    "default_threads",
    "format_duration",
    "progress_callbacks",
    "read_progress",
    "worker_command",
    "worker_environment",
]

#: A run's log file (worker processes only), in its run dir.
RUN_LOG = "compare.log"
#: A worker's progress record, in its run dir.
PROGRESS_FILE = "progress.json"


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one of N concurrent runs trains: an ultralytics ``device`` string and, on the CPU, its thread count."""

    index: int
    device: str
    threads: int | None = None


def available_cpus() -> int:
    """CPUs this process may use (its affinity mask: what Slurm or taskset granted), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads(jobs: int, cpus: int | None = None) -> int:
    """CPU threads per run when ``jobs`` runs share the CPUs: an equal share, capped at 8 as ultralytics caps its
    own count (``min(8, CPUs - 1)`` for one run)."""
    cpus = available_cpus() if cpus is None else cpus
    return max(1, min(8, cpus // jobs))


def _is_cpu(device: str) -> bool:
    return device.strip().lower() in {"cpu", "mps"}


def deal_devices(device: str, jobs: int, threads: int | None = None, cuda_devices: int | None = None,
                 cpus: int | None = None) -> tuple[list[Slot], list[str]]:
    """Deal ``device`` out to ``jobs`` slots; returns the slots and notes for the plan.

    * ``cpu`` (or ``mps``): every slot gets it, with ``threads`` CPU threads (default :func:`default_threads`);
    * a GPU list ``0,1,2,3``: with ``jobs`` <= GPUs, consecutive groups of ``GPUs // jobs`` (one GPU each at
      ``--jobs 4``, two each at ``--jobs 2``: ultralytics' DDP inside the run), a remainder left idle and named
      in the notes; with more jobs than GPUs, slot ``i`` gets GPU ``i mod GPUs`` (``--jobs 8`` on 4 GPUs: two
      runs per GPU);
    * ``""`` (ultralytics' choice): the ``cuda_devices`` visible GPUs (0 when None or none: the CPU).

    Raises:
        ValueError: ``jobs`` < 1, or an entry of the GPU list that is not a device number.
    """
    require_int(jobs, "--jobs", 1)
    text = device.strip().lower().replace("cuda:", "")
    if not text:
        text = ",".join(map(str, range(cuda_devices))) if cuda_devices else "cpu"
    if _is_cpu(text):
        per_run = threads if threads is not None else default_threads(jobs, cpus)
        return [Slot(index, text, per_run) for index in range(jobs)], []
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not all(gpu.isdigit() for gpu in gpus):
        raise InputError(f"--device {device}: give cpu, mps, or GPU numbers such as 0 or 0,1,2,3")
    notes = [f"--threads {threads} ignored: it sets the CPU threads of runs on --device cpu"] if threads else []
    if jobs <= len(gpus):
        size = len(gpus) // jobs
        slots = [Slot(index, ",".join(gpus[index * size:(index + 1) * size])) for index in range(jobs)]
        idle = gpus[jobs * size:]
        if idle:
            notes.append(f"GPU {', '.join(idle)} left idle: {len(gpus)} GPUs do not split evenly into {jobs} runs "
                         f"of {size} GPU{'s' if size > 1 else ''}")
    else:
        slots = [Slot(index, gpus[index % len(gpus)]) for index in range(jobs)]
    return slots, notes


def format_duration(seconds: float | None) -> str:
    """``45s``, ``12m05s``, ``3h20m``; ``?`` for None."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def read_progress(run_dir: Path) -> dict[str, Any] | None:
    """A worker's progress record, or None before it wrote one (or while unreadable)."""
    try:
        return json.loads((Path(run_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def progress_callbacks(run_dir: Path, parent_pid: int | None = None,
                       every: float = 1.0) -> dict[str, Callable[[Any], None]]:
    """ultralytics callbacks that keep ``run_dir/progress.json`` up to date (at most every ``every`` seconds
    within an epoch; at once at an epoch's end), and stop training (as a Ctrl-C would) when the runner that
    started this process is gone (``parent_pid``): a run whose runner died must not go on training unclaimed.

    Only the main process writes (DDP ranks other than 0 do nothing); only the worker process itself watches its
    runner (a DDP rank's parent is the DDP launcher; the rank stops when the worker does).
    """
    path = Path(run_dir) / PROGRESS_FILE
    worker_pid = os.getpid()  # DDP ranks run unpickled copies of these callbacks in their own processes
    state: dict[str, Any] = {"batch": 0, "written": 0.0, "start": None, "epochs_done_here": 0, "map50": None,
                             "map50_95": None}

    def main_process() -> bool:
        return int(os.environ.get("RANK", -1)) in (-1, 0)

    def write(trainer, phase: str, force: bool) -> None:
        now = time.time()
        if not force and now - state["written"] < every:
            return
        batches = len(trainer.train_loader) if getattr(trainer, "train_loader", None) is not None else None
        epoch, epochs = int(trainer.epoch), int(trainer.epochs)
        fraction = state["batch"] / batches if batches else 0.0
        done_here = state["epochs_done_here"] + (fraction if phase == "training" else 0.0)
        eta = None
        if state["start"] is not None and done_here > 0:
            per_epoch = (now - state["start"]) / done_here
            eta = per_epoch * max(epochs - epoch - (fraction if phase == "training" else 1.0), 0.0)
        record = {"phase": phase, "epoch": min(epoch + 1, epochs), "epochs": epochs, "batch": state["batch"],
                  "batches": batches,
                  "map50": state["map50"], "map50_95": state["map50_95"], "eta_s": eta, "pid": os.getpid(),
                  "updated": now}
        write_text_atomic(path, json.dumps(record) + "\n")
        state["written"] = now

    def on_train_epoch_start(trainer) -> None:
        state["batch"] = 0
        if state["start"] is None:
            state["start"] = time.time()
        if main_process():
            write(trainer, "training", force=True)

    def on_train_batch_end(trainer) -> None:
        if parent_pid is not None and os.getpid() == worker_pid and os.getppid() != parent_pid:
            raise KeyboardInterrupt  # the runner is gone: stop as Ctrl-C would (last.pt stays resumable)
        state["batch"] += 1
        if main_process():
            write(trainer, "training", force=False)

    def on_fit_epoch_end(trainer) -> None:
        if trainer.epoch >= trainer.epochs:  # ultralytics' final validation of best.pt, after the last epoch
            if main_process():
                write(trainer, "evaluating", force=True)
            return
        metrics = getattr(trainer, "metrics", None) or {}
        state["map50"] = metrics.get("metrics/mAP50(B)", state["map50"])
        state["map50_95"] = metrics.get("metrics/mAP50-95(B)", state["map50_95"])
        state["epochs_done_here"] += 1
        if main_process():
            write(trainer, "validated", force=True)

    return {"on_train_epoch_start": on_train_epoch_start, "on_train_batch_end": on_train_batch_end,
            "on_fit_epoch_end": on_fit_epoch_end}


class Worker:
    """One worker process training one run, its output appended to the run's log file."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str], slot: Slot, key: str):
        self.slot = slot
        self.key = key
        self.log_path = log_path
        self.started = time.time()
        with open(log_path, "ab") as log:  # the child keeps its own descriptor; ours can close at once
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def signal(self, number: int) -> None:
        """Send a signal to the worker's whole process group (its dataloader and DDP processes too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)

    def interrupt(self) -> None:
        self.signal(signal.SIGINT)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)


def worker_environment(threads: int | None) -> dict[str, str]:
    """The environment of a worker: this one, cawb importable from where it is loaded, and on the CPU the thread
    count set before torch starts (``OMP_NUM_THREADS``)."""
    import cawb

    env = dict(os.environ)
    package_root = str(Path(cawb.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def worker_command(spec: Path) -> list[str]:
    """The command line of a worker for one spec file."""
    return [sys.executable, "-m", "cawb.experiment.compare.worker", str(spec)]

