"""``--jobs N``: up to N runs at once, each in its own worker process, with one live view of all
(:class:`WorkerPool`).

The runner claims each run and prepares its directory (:func:`cawb.experiment.compare.execution.begin_run`) before
starting its worker; the run's lock names both, so it stays alive while either lives, and a worker whose runner is
gone stops at its next batch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

from cawb.experiment.compare.execution import ComparisonInterrupted, begin_run
from cawb.experiment.compare.model import Run, RunStatus
from cawb.experiment.compare.planning import ACTION_WORDS
from cawb.experiment.compare.processes import (
    RUN_LOG,
    Slot,
    Worker,
    deal_devices,
    format_duration,
    read_progress,
    worker_command,
    worker_environment,
)
from cawb.experiment.compare.rundir import EVAL_RECORD, final_numbers, load_finished
from cawb.utils.errors import error_line

__all__ = ["WorkerPool", "slots_for"]


def _cuda_devices(device: str) -> int | None:
    """How many GPUs ultralytics would see for device "" (its own choice); None otherwise."""
    if device.strip():
        return None
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def slots_for(device: str, jobs: int, threads: int | None) -> tuple[list[Slot], list[str]]:
    """:func:`deal_devices` for ``--device``, ``--jobs`` and ``--threads`` as given (``""``: the visible GPUs)."""
    return deal_devices(device, jobs, threads, cuda_devices=_cuda_devices(device))


class WorkerPool:
    """``--jobs N`` > 1: one worker process per run, up to N at once, in the slots' devices; a live view of all.

    ``plan``, ``claims`` and ``begin_run`` come from the runner (:mod:`cawb.experiment.compare.execution`): a run is
    claimed and prepared here, in the runner, then trained in its worker. Ctrl-C (or SIGTERM turned into it) stops
    every worker with SIGINT, as a terminal's Ctrl-C would, and waits for them.
    """

    #: Seconds the workers get to stop after Ctrl-C before they are killed.
    STOP_TIMEOUT = 120.0

    def __init__(self, plan: Any, slots: list[Slot], callbacks: Any, log: Callable[[str], None], claims: Any,
                 live: Any):
        self.plan, self.slots, self.callbacks, self.log, self.claims, self.live = (plan, slots, callbacks, log,
                                                                                   claims, live)
        self.free = list(slots)
        self.active: dict[str, tuple[Any, Worker, Path]] = {}  # run dir name -> (run, worker, outcome file)
        self.queue: list[Any] = []
        self.runs: list[Any] = []

    def run(self, runs: list[Any]) -> None:
        """Bring ``runs`` to finished (or failed, or left to the process that holds them).

        Raises:
            ComparisonInterrupted: Ctrl-C; every worker was stopped first.
            OSError: a run's write was refused by the disk (:func:`cawb.utils.errors.is_disk_fault`); every worker
                was stopped first, each run resumable.
        """
        import tempfile

        self.runs, self.queue = list(runs), list(runs)
        workdir = Path(tempfile.mkdtemp(prefix="cawb-compare-"))
        self.live.message(f"compare: Ctrl-C stops every run (rerun the same command to resume them); each run's log "
                          f"is <run dir>/{RUN_LOG}")
        try:
            while self.queue or self.active:
                while self.queue and self.free:
                    run = self.queue.pop(0)
                    if begin_run(self.plan, run, self.claims, self.live.message):
                        self._start(run, self.free.pop(0), workdir)
                for name, (run, worker, outcome) in list(self.active.items()):
                    if worker.poll() is not None:
                        del self.active[name]
                        result = self._finish(run, worker, outcome)
                        if result is not None and result["status"] == "disk":
                            self._stop_all()  # the other runs write to the same place: stopped, resumable
                            raise OSError(result["errno"], os.strerror(result["errno"]), result["file"])
                self._refresh()
                if self.queue or self.active:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            raise ComparisonInterrupted(self._stop_all()) from None
        finally:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)  # our own spec files
            self.live.close()

    def _start(self, run: Run, slot: Slot, workdir: Path) -> None:
        import cloudpickle

        try:
            child_plan = dataclasses.replace(self.plan, settings=dataclasses.replace(self.plan.settings,
                                                                                     device=slot.device))
            spec, outcome = workdir / f"{run.run_dir.name}.spec", workdir / f"{run.run_dir.name}.outcome.json"
            outcome.unlink(missing_ok=True)
            with open(spec, "wb") as handle:
                cloudpickle.dump({"plan": child_plan, "run": run, "callbacks": dict(self.callbacks or {}),
                                  "threads": slot.threads, "parent_pid": os.getpid(), "outcome": str(outcome)},
                                 handle)
            log_path = run.run_dir / RUN_LOG
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(f"\n==== compare: {ACTION_WORDS[run.action]} on device {slot.device}"
                             f"{f', {slot.threads} CPU threads' if slot.threads else ''}, "
                             f"{time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
            worker = Worker(worker_command(spec), log_path, worker_environment(slot.threads), slot, run.run_dir.name)
        except Exception as error:  # e.g. no process could be started: this run fails, not the rest
            self.claims.release(run)
            self.free.append(slot)
            run.failed(f"{type(error).__name__}: {error_line(error)}")
            self.live.message(f"compare: {run.name}: FAILED to start: {run.error}")
            return
        self.claims.set_worker(run, worker.pid)
        self.active[run.run_dir.name] = (run, worker, outcome)

    def _finish(self, run: Run, worker: Worker, outcome_path: Path, stopping: bool = False) -> dict[str, Any] | None:
        """Record a worker's outcome; ``stopping`` (after Ctrl-C): a run that did not finish is interrupted, not
        failed."""
        code = worker.poll()
        try:
            outcome = json.loads(outcome_path.read_text())
        except (OSError, ValueError):
            outcome = None
        if outcome is not None and outcome["status"] == "finished":
            if not load_finished(run):
                run.failed(f"{EVAL_RECORD} missing after the worker finished (log: {worker.log_path})")
        elif outcome is not None and outcome["status"] in ("failed", "disk"):
            run.failed(f"{outcome['error']} (log: {worker.log_path})")
        elif outcome is not None:  # its worker alone was interrupted (a signal to it, not Ctrl-C of the runner)
            run.failed(f"interrupted by a signal to its worker; rerun to resume it (log: {worker.log_path})")
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
            run.failed(f"the worker process ended with {how} (log: {worker.log_path})")
        if stopping and run.status != RunStatus.FINISHED:
            run.pending()
        self.claims.release(run)
        self.free.append(worker.slot)
        self.free.sort(key=lambda slot: slot.index)
        if run.status == RunStatus.FAILED:
            self.live.message(f"compare: {run.name}: FAILED: {run.error}")
        return outcome

    def _stop_all(self) -> list[tuple[Any, Path | None]]:
        """Stop every worker (SIGINT, then SIGKILL after :attr:`STOP_TIMEOUT`); the interrupted runs and their
        checkpoints."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # stop the workers without being cut short
        try:
            self.live.message(f"compare: stopping {len(self.active)} run(s) (ultralytics keeps each last.pt): wait, "
                              "please")
            for _, worker, _ in self.active.values():
                worker.interrupt()
            deadline = time.time() + self.STOP_TIMEOUT
            while any(worker.poll() is None for _, worker, _ in self.active.values()) and time.time() < deadline:
                time.sleep(0.2)
            for _, worker, _ in self.active.values():
                if worker.poll() is None:
                    worker.kill()
                    worker.process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        interrupted = []
        for name, (run, worker, outcome) in list(self.active.items()):
            del self.active[name]
            result = self._finish(run, worker, outcome, stopping=True)
            if run.status != RunStatus.FINISHED:
                last = Path(result["last"]) if result and result.get("last") else run.last_pt
                interrupted.append((run, last if last.is_file() else None))
        self._refresh()
        return interrupted

    def _header(self) -> str:
        counts = {status: sum(run.status == status for run in self.runs) for status in (RunStatus.FINISHED, RunStatus.FAILED)}
        return (f"compare --jobs {len(self.slots)}: {counts[RunStatus.FINISHED]}/{len(self.runs)} finished, "
                f"{len(self.active)} running, {counts[RunStatus.FAILED]} failed, {len(self.queue)} waiting")

    def _refresh(self) -> None:
        width = max((len(run.name) for run in self.runs), default=0)
        rows = [self._row(run, self.active[run.run_dir.name][1] if run.run_dir.name in self.active else None, width)
                for run in self.runs]
        self.live.update(self._header(), rows)

    @staticmethod
    def _row(run: Run, worker: Worker | None, width: int) -> tuple[str, str, str]:
        """One line of the live view for a run: (key, text, milestone); ``width`` aligns the names."""
        name = run.name.ljust(width)
        if worker is not None:
            progress = read_progress(run.run_dir)
            device = f"[{'cpu' if worker.slot.device == 'cpu' else 'GPU ' + worker.slot.device}]"
            if progress is None or progress.get("updated", 0) < worker.started:  # none yet from this attempt
                state = f"starting ({ACTION_WORDS[run.action]})"
                return run.name, f"  {name} {device:<10} {state}", state
            epoch, epochs = progress.get("epoch"), progress.get("epochs")
            value = progress.get("map50_95")
            last_map = f"mAP50-95 {value:.3f}" if isinstance(value, (int, float)) else "mAP50-95   -  "
            batch = (f" batch {progress['batch']}/{progress['batches']}" if progress.get("phase") == "training"
                     and progress.get("batches") else "")
            text = (f"  {name} {device:<10} epoch {epoch:>4}/{epochs:<4}{batch:<16} {last_map}  "
                    f"ETA {format_duration(progress.get('eta_s'))}")
            milestone = f"epoch {epoch} {progress.get('phase')}"
            if progress.get("phase") == "evaluating" or (progress.get("phase") == "validated" and epoch == epochs):
                text = f"  {name} {device:<10} training done ({last_map}), evaluating last.pt and best.pt"
                milestone = "evaluating"
            return run.name, text, milestone
        if run.status == RunStatus.FINISHED:
            numbers, source = final_numbers(run.evaluation)
            return run.name, f"  {name} finished: {numbers} (final, {source})", "finished"
        if run.status == RunStatus.FAILED:
            return run.name, f"  {name} FAILED: {run.error}", "failed"
        if run.error:  # held by another process
            return run.name, f"  {name} {run.error}", run.error
        return run.name, f"  {name} waiting", "waiting"
