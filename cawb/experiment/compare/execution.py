"""Running a comparison's runs: claiming each, preparing its directory, training, resuming or evaluating it.

A process works on a run only while it holds the run's lock (``<project>/locks/<run dir name>.lock``,
:mod:`cawb.utils.locks`), and decides what to do with it from the run directory as it is then (another process may
have advanced it since planning). :class:`Claims` holds this process's locks; :func:`begin_run` claims and prepares
a run, :func:`execute_run` brings a prepared run to finished (in this process, or in a ``--jobs`` worker process,
:mod:`cawb.experiment.compare.worker`), and :func:`run_sequentially` does both, one run after another. The pool of
worker processes for ``--jobs N`` is :class:`cawb.experiment.compare.worker_pool.WorkerPool`.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Callable, Sequence

from cawb.experiment.compare.model import Action, Run, RunStatus
from cawb.experiment.compare.planning import ACTION_WORDS, ComparisonPlan, run_config
from cawb.experiment.compare.processes import cpu_threads
from cawb.experiment.compare.rundir import decide_action, evaluate_run, final_numbers, load_finished, prepare_run_dir
from cawb.training.config import plan_resume
from cawb.training.train import Callbacks, TrainingInterrupted, train
from cawb.utils.errors import Interrupted, error_line, is_disk_fault
from cawb.utils.locks import FileLock, Heartbeat, acquire_lock, read_lock_owner, stale_reason

__all__ = ["LOCKS", "Claims", "ComparisonInterrupted", "begin_run", "execute_run", "run_sequentially"]

#: The folder of the run and report locks, in the project.
LOCKS = "locks"


class ComparisonInterrupted(Interrupted):
    """Ctrl-C (or SIGTERM): the comparison stopped; rerunning the same command continues where it stopped.

    ``interrupted`` lists every interrupted run with its checkpoint (None when no epoch of it finished; several runs
    with ``--jobs``); ``run`` and ``last`` are the first of them."""

    def __init__(self, interrupted: Sequence[tuple[Run, Path | None]] = ()):
        self.interrupted = list(interrupted)
        self.run, self.last = self.interrupted[0] if self.interrupted else (None, None)
        parts = [f"{run.name} continues from {checkpoint}" if checkpoint else
                 f"{run.name} starts again (no epoch of it had finished)" for run, checkpoint in self.interrupted]
        during = ", ".join(run.name for run, _ in self.interrupted) or "the comparison"
        super().__init__(f"interrupted during {during}; rerun the same command to continue: finished runs are "
                         "skipped" + (f" and {'; '.join(parts)}" if parts else ""))


class Claims:
    """The run locks this process holds (in ``<project>/locks``), refreshed by a heartbeat thread."""

    def __init__(self, project: Path, lock_timeout: float):
        self.directory = project / LOCKS
        self.lock_timeout = lock_timeout
        self.heartbeat = Heartbeat(interval=max(1.0, min(60.0, lock_timeout / 4)))
        self.held: dict[str, FileLock] = {}

    def path(self, run: Run) -> Path:
        return self.directory / f"{run.run_dir.name}.lock"

    def holder(self, run: Run) -> str | None:
        """Who holds ``run`` while working on it (``host pid N``), or None (no lock, or a stale one)."""
        path = self.path(run)
        owner = read_lock_owner(path)
        if not path.exists() or stale_reason(path, self.lock_timeout, owner) is not None:
            return None
        return owner.describe() if owner else "another process"

    def claim(self, run: Run) -> tuple[bool, str | None]:
        """(True, whose stale lock was taken over and why, or None) or (False, who holds it)."""
        lock, holder = acquire_lock(self.path(run), self.lock_timeout)
        if lock is None:
            return False, holder.describe() if holder else "another process (its lock is being written)"
        self.held[run.run_dir.name] = lock
        self.heartbeat.add(lock)
        return True, lock.taken_over

    def set_worker(self, run: Run, pid: int) -> None:
        """Name the worker process training ``run``: the lock stays alive while it lives, if this process dies."""
        self.held[run.run_dir.name].set_worker(pid)

    def release(self, run: Run) -> None:
        lock = self.held.pop(run.run_dir.name, None)
        if lock is not None:
            self.heartbeat.discard(lock)
            lock.release()

    def __enter__(self) -> Claims:
        self.heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.held):
            lock = self.held.pop(name)
            self.heartbeat.discard(lock)
            lock.release()
        self.heartbeat.__exit__(*exc)


def begin_run(plan: ComparisonPlan, run: Run, claims: Claims, log: Callable[[str], None]) -> bool:
    """Decide what this process does with ``run``: False when it is finished (its record read) or another process
    holds it; True when this process now holds its lock and has prepared it for its action. A run that cannot be
    prepared is marked failed."""
    if load_finished(run):
        run.action = Action.SKIP
        return False
    claimed, who = claims.claim(run)
    if not claimed:
        run.pending(f"being run by {who}", held_by=who)
        return False
    if who:
        log(f"compare: {run.name}: took over the stale lock of {who}")
    try:
        notes: list[str] = []
        run.action = decide_action(run.run_dir, plan.identity(run), notes)
        for note in notes:
            log(f"compare: {note}")
        if run.action == Action.SKIP:  # finished by another process between the check above and the claim
            claims.release(run)
            load_finished(run)
            return False
        prepare_run_dir(run, plan.identity(run), log)
    except Exception as error:  # one run that cannot be prepared must not cost the others
        claims.release(run)
        run.failed(f"{type(error).__name__}: {error_line(error)}")
        log(f"compare: {run.name}: FAILED: {run.error}")
        return False
    return True


def execute_run(plan: ComparisonPlan, run: Run, callbacks: Callbacks | None) -> None:
    """Bring one prepared run (:func:`begin_run`) to finished: train / resume / evaluate as planned. Used in this
    process with ``--jobs 1`` and by each worker process otherwise."""
    settings = plan.settings
    if run.action == Action.TRAIN:
        train(run_config(run, settings), callbacks=callbacks)
    elif run.action == Action.RESUME:
        workers = {"workers": settings.workers} if settings.workers is not None else {}
        train(plan_resume(run.last_pt, device=settings.device, **workers), callbacks=callbacks)
    evaluate_run(run, plan.dataset, imgsz=settings.imgsz, batch=settings.batch, device=settings.device)


def run_sequentially(plan: ComparisonPlan, mine: list[Run], callbacks: Callbacks | None, log: Callable[[str], None],
                     claims: Claims, threads: int | None) -> None:
    """``--jobs 1``: the runs one after another in this process, ultralytics' log in the terminal.

    Raises:
        ComparisonInterrupted: Ctrl-C; the run in progress keeps its last.pt.
        OSError: a write the disk refused (:func:`cawb.utils.errors.is_disk_fault`); the run keeps its last.pt.
    """
    for index, run in enumerate(mine, start=1):
        where = f"compare [{index}/{len(mine)}] {run.name}"
        if not begin_run(plan, run, claims, log):
            if run.status == RunStatus.FINISHED:
                log(f"{where}: {ACTION_WORDS[Action.SKIP]} ({run.run_dir})")
            elif run.status == RunStatus.PENDING:
                log(f"{where}: {run.error}: left to it")
            continue
        log(f"{where}: {ACTION_WORDS[run.action]} ({run.run_dir})")
        try:
            with cpu_threads(threads):
                execute_run(plan, run, callbacks)
        except TrainingInterrupted as interrupted:
            raise ComparisonInterrupted([(run, interrupted.last)]) from None
        except KeyboardInterrupt:
            raise ComparisonInterrupted([(run, run.last_pt if run.last_pt.is_file() else None)]) from None
        except Exception as error:  # one run's failure must not cost the others: record it and go on
            if is_disk_fault(error):  # but the next run would meet this one too: stop; rerun once it is fixed
                raise
            run.failed(f"{type(error).__name__}: {error_line(error)}")
            log("".join(traceback.format_exception(error)).rstrip())  # the whole story, for debugging it
            log(f"{where}: FAILED: {run.error}")
            continue
        finally:
            claims.release(run)
        numbers, source = final_numbers(run.evaluation)
        log(f"{where}: finished, final {numbers} ({source})")
