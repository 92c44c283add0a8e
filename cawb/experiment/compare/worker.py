"""One run of a ``compare.py --jobs N`` comparison in its own process: ``python -m cawb.experiment.compare.worker SPEC``.

The runner (:class:`cawb.experiment.compare.worker_pool.WorkerPool`) claims the run, prepares its directory, writes SPEC (a
cloudpickle of the plan with this worker's device, the run, the caller's callbacks, the CPU thread count and where
to write the outcome) and starts this module with its output going to the run's ``compare.log``. The worker trains,
resumes or evaluates the run exactly as a ``--jobs 1`` run does (:func:`cawb.experiment.compare.execution.execute_run`),
keeps ``progress.json`` up to date for the live view, and writes its outcome as JSON::

    {"status": "finished" | "failed" | "disk" | "interrupted", "error": "Type: first line" | null,
     "last": "…/last.pt" | null}

``disk``: a write the disk refused (no space, read-only, ...), with its ``errno`` and ``file``: the runner stops
every run. Exit status: 0 finished, 1 failed or disk, 130 interrupted (SIGINT from the runner, or SIGTERM, e.g.
Slurm's).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.errors import error_line, is_disk_fault
from cawb.utils.signals import sigterm_as_ctrl_c

__all__ = ["main", "run_spec"]


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec (see the module docstring); returns the outcome record (also written to ``spec["outcome"]``)."""
    from cawb.experiment.compare.execution import execute_run
    from cawb.experiment.compare.processes import cpu_threads, progress_callbacks
    from cawb.training.train import TrainingInterrupted, callback_lists

    plan, run = spec["plan"], spec["run"]
    callbacks = callback_lists(progress_callbacks(run.run_dir, parent_pid=spec.get("parent_pid")))
    for event, functions in callback_lists(spec.get("callbacks")).items():
        callbacks.setdefault(event, []).extend(functions)
    try:
        with cpu_threads(spec.get("threads")):
            execute_run(plan, run, callbacks)
        outcome = {"status": "finished", "error": None, "last": None}
    except TrainingInterrupted as interrupted:
        outcome = {"status": "interrupted", "error": None, "last": str(interrupted.last) if interrupted.last else None}
    except KeyboardInterrupt:
        outcome = {"status": "interrupted", "error": None, "last": str(run.last_pt) if run.last_pt.is_file() else None}
    except Exception as error:  # the runner reports it and goes on with the other runs
        traceback.print_exc()
        outcome = {"status": "failed", "error": f"{type(error).__name__}: {error_line(error)}", "last": None}
        if is_disk_fault(error):  # the runner stops every run: the others would meet it too
            outcome.update(status="disk", errno=error.errno, file=error.filename)
    write_text_atomic(Path(spec["outcome"]), json.dumps(outcome) + "\n")
    return outcome


def main(argv: list[str] | None = None) -> int:
    import cloudpickle

    from cawb.utils.ultralytics_compat import keep_ultralytics_offline

    argv = sys.argv[1:] if argv is None else argv
    keep_ultralytics_offline()
    with sigterm_as_ctrl_c():
        with open(argv[0], "rb") as handle:
            spec = cloudpickle.load(handle)
        outcome = run_spec(spec)
    sys.stdout.flush()
    return {"finished": 0, "failed": 1, "disk": 1, "interrupted": 130}[outcome["status"]]


if __name__ == "__main__":
    sys.exit(main())
