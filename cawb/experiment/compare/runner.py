"""``compare()``: merge the preset and flags, plan, say the plan, run this process's share, write the report."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from cawb.experiment.compare.collect import collect_states, write_report_once
from cawb.experiment.compare.execution import Claims, run_sequentially
from cawb.experiment.compare.model import Action, Run, RunStatus
from cawb.experiment.compare.planning import ComparisonPlan, plan_comparison, shard_runs
from cawb.experiment.compare.processes import Slot
from cawb.experiment.compare.report import ReportPaths
from cawb.experiment.compare.rundir import EVAL_RECORD
from cawb.experiment.compare.settings import DEFAULT_LOCK_TIMEOUT, ExecutionOptions, parse_shard, resolve_settings
from cawb.experiment.compare.worker_pool import WorkerPool, slots_for
from cawb.training.train import Callbacks
from cawb.utils.errors import InputError, error_line
from cawb.utils.user_files import display_path

__all__ = ["ComparisonResult", "compare", "describe_plan", "execute_plan", "report_finished"]


@dataclasses.dataclass
class ComparisonResult:
    """What a comparison left: every run, the report summary (None when this process wrote none) and its files
    (``report``). ``exit_code``: 1 when a run this process worked on failed (with ``report_only``: when a planned
    run is missing from the report), else 0."""

    plan: ComparisonPlan
    runs: list[Run]
    summary: dict[str, Any] | None
    report: ReportPaths | None = None
    report_only: bool = False

    @property
    def failed(self) -> list[Run]:
        return [run for run in self.runs if run.status == RunStatus.FAILED]

    @property
    def missing(self) -> list[Run]:
        return [run for run in self.runs if run.status == RunStatus.PENDING]

    @property
    def exit_code(self) -> int:
        if self.report_only:
            return 1 if self.missing or self.failed else 0
        return 1 if self.failed else 0


def execute_plan(plan: ComparisonPlan, callbacks: Callbacks | None = None, log: Callable[[str], None] = print,
                 execution: ExecutionOptions = ExecutionOptions(), live: Any = None,
                 slots: list[Slot] | None = None) -> ComparisonResult:
    """Run this process's share of the planned runs, then write the report when it is this process's turn.

    A run is worked on only while this process holds its lock; a run another process holds is left to it. A run
    that raises is recorded as failed (one-line error) and the others go on. ``callbacks`` (ultralytics events ->
    functions of the trainer, or lists of them) are added to every run that trains; with ``jobs`` > 1 they travel to
    the worker processes with cloudpickle. ``slots`` are the devices of ``jobs`` > 1 (default: dealt from the plan's
    device); ``live`` is their :class:`cawb.utils.live_view.LiveView` (default: one on stdout).

    The report: without ``shard``, written from the finished runs (failed ones listed) unless another process still
    holds a run; with ``shard``, written only when every planned run is finished, once (a shard that finishes at
    the same time finds it written).

    Raises:
        ComparisonInterrupted: Ctrl-C (or SIGTERM turned into it by the caller); every worker is stopped first and
            no report is written.
        OSError: a write the disk refused (no space, read-only, ...): every run is stopped, each resumable by a
            rerun, and no report is written.
    """
    mine = shard_runs(plan.runs, execution.shard)
    with Claims(plan.settings.project, execution.lock_timeout) as claims:
        if execution.jobs == 1:
            run_sequentially(plan, mine, callbacks, log, claims, execution.threads)
        else:
            from cawb.utils.live_view import LiveView

            if slots is None:
                slots, _ = slots_for(plan.settings.device, execution.jobs, execution.threads)
            WorkerPool(plan, slots, callbacks, log, claims, live if live is not None else LiveView()).run(mine)
        collect_states(plan, claims, mine)

    summary = paths = None
    unfinished = [run for run in plan.runs if run.status != RunStatus.FINISHED]
    held = [run for run in unfinished if run.held_by is not None]
    if execution.shard is not None and unfinished:
        log(f"compare: shard {execution.shard[0]}/{execution.shard[1]} done; {len(plan.runs) - len(unfinished)} of "
            f"{len(plan.runs)} planned runs finished, so no report yet: the process that finishes the last run writes "
            "it (or add --report-only to this command for a report of what has finished)")
    elif held:
        log(f"compare: {len(held)} run(s) are being run by other processes "
            f"({'; '.join(f'{run.name}: {run.error}' for run in held)}): the last to finish writes "
            "the report (or add --report-only to this command for a report of what has finished)")
    elif any(run.status == RunStatus.FINISHED for run in plan.runs):
        summary, paths = write_report_once(plan, execution.lock_timeout, log,
                                           skip_if_written=execution.shard is not None)
    else:
        log("compare: no run finished: no report written")
    result = ComparisonResult(plan=plan, runs=plan.runs, summary=summary, report=paths)
    if result.failed:
        log(f"compare: {len(result.failed)} run(s) failed: " + "; ".join(run.name for run in result.failed)
            + ". Rerun the same command to retry them (finished runs are skipped).")
    return result


def report_finished(plan: ComparisonPlan, log: Callable[[str], None] = print,
                    lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> ComparisonResult:
    """``--report-only``: the report of the runs finished so far, listing the missing ones; nothing trains.

    Raises:
        InputError: no planned run has finished (nothing to report).
    """
    with Claims(plan.settings.project, lock_timeout) as claims:
        collect_states(plan, claims, ())
    if not any(run.status == RunStatus.FINISHED for run in plan.runs):
        raise InputError(f"--report-only: no finished run under {plan.settings.project / 'runs'} (none of the "
                         f"{len(plan.runs)} planned runs has an {EVAL_RECORD}): nothing to report; give the --project "
                         "and the settings of the comparison that ran")
    summary, paths = write_report_once(plan, lock_timeout, log, skip_if_written=False)
    result = ComparisonResult(plan=plan, runs=plan.runs, summary=summary, report=paths, report_only=True)
    if result.missing:
        log(f"compare: {len(result.missing)} of {len(plan.runs)} planned runs are missing from the report: "
            + "; ".join(f"{run.name} ({run.error})" for run in result.missing))
    return result


def describe_plan(plan: ComparisonPlan, execution: ExecutionOptions = ExecutionOptions(),
                  slots: tuple[list[Slot], list[str]] | None = None) -> list[str]:
    """The plan in a few lines: arms x seeds, what happens to each run, the scaled restarts, the report files,
    and how this process runs its share (shard, jobs, devices: ``slots`` as dealt, with their notes)."""
    counts = {action: sum(run.action == action for run in plan.runs) for action in Action}
    s = plan.settings
    source = {key: f" ({where})" for key, where in plan.sources.items() if where != "given"}
    words = ((Action.SKIP, "skipped (finished)"), (Action.EVALUATE, "to evaluate"), (Action.RESUME, "to resume"),
             (Action.TRAIN, "to train"))
    lines = [f"compare: {len(plan.arms)} arm(s) x {len(s.seeds)} seed(s) = {len(plan.runs)} runs "
             f"({', '.join(arm.label for arm in plan.arms)}; seeds {', '.join(map(str, s.seeds))}), "
             f"{plan.arms[0].epochs} epochs{source.get('epochs', '')}, {s.cfg}, imgsz {s.imgsz}"
             f"{source.get('imgsz', '')}, batch {s.batch}{source.get('batch', '')}, device {s.device}, data "
             f"{display_path(s.data)} ({plan.train_images} train / {plan.val_images} val images): "
             + ", ".join(f"{counts[action]} {word}" for action, word in words if counts[action])]
    lines += [f"compare: {note}" for note in plan.notes]
    if execution.shard is not None:
        mine = shard_runs(plan.runs, execution.shard)
        lines.append(f"compare: shard {execution.shard[0]}/{execution.shard[1]}: this process takes {len(mine)} of "
                     f"the {len(plan.runs)} runs ({', '.join(run.name for run in mine) or 'none'})")
    if execution.jobs > 1:
        dealt, notes = slots if slots is not None else slots_for(s.device, execution.jobs, execution.threads)
        where = ", ".join(slot.device + (f" ({slot.threads} thread{'s' if slot.threads > 1 else ''})"
                                         if slot.threads else "") for slot in dealt)
        lines.append(f"compare: --jobs {execution.jobs}: up to {execution.jobs} runs at once, one worker process each, "
                     f"on {where}; each run's log goes to <run dir>/compare.log")
        lines += [f"compare: {note}" for note in notes]
    if plan.paths.suffix:
        lines.append(f"compare: an earlier report exists in {s.project}: this one will be written beside it as "
                     f"{plan.paths.table_md.name}, {plan.paths.summary_json.name}, ... (--exist-ok replaces it)")
    return lines


def compare(preset: str | None = None, callbacks: Callbacks | None = None, log: Callable[[str], None] = print, *,
            jobs: int = 1, shard: tuple[int, int] | str | None = None, threads: int | None = None,
            lock_timeout: float = DEFAULT_LOCK_TIMEOUT, report_only: bool = False, live: Any = None,
            **flags: Any) -> ComparisonResult:
    """``scripts/compare.py``: merge the preset and flags, check everything, print the plan, run, report.

    Keyword flags as in :func:`~cawb.experiment.compare.settings.resolve_settings`; ``jobs``, ``shard`` (``(K, N)``
    or ``"K/N"``), ``threads`` and ``lock_timeout`` as in :class:`ExecutionOptions`. ``callbacks`` go to every
    training run (see :func:`execute_plan`); ``log`` receives the progress lines. ``report_only``: write the report
    of what has finished (:func:`report_finished`), train nothing.

    Raises:
        InputError: bad input, before anything trains.
        ComparisonInterrupted: Ctrl-C.
    """
    execution = ExecutionOptions(jobs=jobs, shard=parse_shard(shard) if isinstance(shard, str) else shard,
                                 threads=threads, lock_timeout=lock_timeout)
    if callbacks and jobs > 1:
        import cloudpickle

        try:
            cloudpickle.dumps(dict(callbacks))
        except Exception as error:
            raise InputError(f"callbacks cannot be sent to the --jobs worker processes ({error_line(error)}): use "
                             "jobs=1 or picklable functions") from None
    settings = resolve_settings(preset, **flags)
    if report_only and not any((settings.project / "runs").glob(f"*/{EVAL_RECORD}")):
        # said before planning, which generates the demo dataset
        raise InputError(f"--report-only: no finished run under {settings.project / 'runs'} (no run there has an "
                         f"{EVAL_RECORD}): nothing to report; give the --project and the settings of the comparison "
                         "that ran")
    plan = plan_comparison(settings)
    if report_only:
        return report_finished(plan, log, lock_timeout)
    # a --device the slots cannot be made of is bad input: refused before anything runs
    dealt = slots_for(plan.settings.device, jobs, threads) if jobs > 1 else None
    for line in describe_plan(plan, execution, dealt):
        log(line)
    return execute_plan(plan, callbacks=callbacks, log=log, execution=execution, live=live,
                        slots=dealt[0] if dealt else None)
