"""Report collection: every planned run's state read from its directory, and the report written once.

The run directories are the source of truth: whatever this process did, a run is finished when its ``eval.json``
is there (:func:`cawb.experiment.compare.rundir.load_finished`), held while another process holds its lock, and
otherwise missing, with the reason. The report is written under ``locks/report.lock`` (one writer at a time) and
recorded in ``locks/report.json`` with a fingerprint of the results it holds, so that two shards finishing at once
write it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any, Callable, Sequence

from cawb.experiment.compare.execution import LOCKS, Claims
from cawb.experiment.compare.model import Run, RunStatus
from cawb.experiment.compare.planning import ComparisonPlan
from cawb.experiment.compare.report import ReportPaths, report_paths, write_report
from cawb.experiment.compare.rundir import load_finished
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.locks import acquire_lock

__all__ = ["collect_states", "write_report_once"]


def collect_states(plan: ComparisonPlan, claims: Claims, mine: Sequence[Run]) -> None:
    """Fill in the state of every planned run this process did not finish or fail, from its run directory."""
    own = {id(run) for run in mine}
    for run in plan.runs:
        if id(run) in own and run.status in (RunStatus.FINISHED, RunStatus.FAILED):
            continue
        if load_finished(run) or run.status == RunStatus.FAILED:
            continue
        holder = claims.holder(run)
        if holder is not None:
            run.pending(f"being run by {holder}", held_by=holder)
        elif run.last_pt.is_file():
            run.pending("not finished (weights/last.pt: rerun to resume it)")
        else:
            run.pending("not started" if not run.run_dir.exists() else "not finished")


def _fingerprint(plan: ComparisonPlan) -> str:
    """What a report holds: the finished runs' evaluation records and the effect sizes."""
    content = {"runs": [[run.arm.label, run.seed, run.evaluation] for run in plan.runs
                        if run.status == RunStatus.FINISHED],
               "effect": dict(plan.settings.effect)}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def write_report_once(plan: ComparisonPlan, lock_timeout: float, log: Callable[[str], None],
                      skip_if_written: bool) -> tuple[dict[str, Any] | None, ReportPaths | None]:
    """Write the report under ``locks/report.lock`` (one writer at a time; the report files are chosen then) and
    record it in ``locks/report.json``. With ``skip_if_written``, a report of exactly these results written
    before (by another shard that finished at the same time) is not written again."""
    directory = plan.settings.project / LOCKS
    lock, holder = acquire_lock(directory / "report.lock", lock_timeout)
    if lock is None:
        log(f"compare: the report is being written by {holder.describe() if holder else 'another process'}")
        return None, None
    try:
        fingerprint = _fingerprint(plan)
        record_path = directory / "report.json"
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(record_path.read_text())
            if skip_if_written and record.get("fingerprint") == fingerprint:
                log(f"compare: the report of these results was written by {record.get('writer')}: "
                    f"{record.get('table_md')} (--report-only writes it again)")
                return None, None
        paths = report_paths(plan.settings.project, plan.settings.exist_ok)
        summary = write_report(plan.arms, plan.runs, plan.summary_settings(), paths)
        write_text_atomic(record_path, json.dumps({"fingerprint": fingerprint, "writer": lock.owner.describe(),
                                                   "written": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                   "table_md": str(paths.table_md)}, indent=2) + "\n")
        plan.paths = paths
        log(f"compare: report written: {', '.join(str(path) for path in paths.all())}")
        return summary, paths
    finally:
        lock.release()
