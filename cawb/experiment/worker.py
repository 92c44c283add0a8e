"""One run of a ``compare.py --jobs N`` comparison in its own process: ``python -m cawb.experiment.worker SPEC``.

The runner (:mod:`cawb.experiment.compare`) claims the run, prepares its directory, writes SPEC (a cloudpickle of
the plan with this worker's device, the run, the caller's callbacks, the CPU thread count and where to write the
outcome) and starts this module with its output going to the run's ``compare.log``. The worker trains, resumes or
evaluates the run exactly as a ``--jobs 1`` run does (:func:`cawb.experiment.compare.execute_run`), keeps
``progress.json`` up to date for the live view, and writes its outcome as JSON::

    {"status": "finished" | "failed" | "interrupted", "error": "Type: first line" | null, "last": "…/last.pt" | null}

Exit status: 0 finished, 1 failed, 130 interrupted (SIGINT from the runner, or SIGTERM, e.g. Slurm's).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.signals import sigterm_as_ctrl_c

__all__ = ["main", "run_spec"]


def _chain(first, second):
    def both(trainer):
        first(trainer)
        second(trainer)

    return both


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec (see the module docstring); returns the outcome record (also written to ``spec["outcome"]``)."""
    from cawb.experiment.compare import execute_run, first_line
    from cawb.experiment.parallel import cpu_threads, progress_callbacks
    from cawb.training.train import TrainingInterrupted

    plan, run = spec["plan"], spec["run"]
    callbacks = progress_callbacks(run.run_dir, parent_pid=spec.get("parent_pid"))
    for event, function in (spec.get("callbacks") or {}).items():
        callbacks[event] = _chain(callbacks[event], function) if event in callbacks else function
    last = run.run_dir / "weights" / "last.pt"
    try:
        with cpu_threads(spec.get("threads")):
            execute_run(plan, run, callbacks)
        outcome = {"status": "finished", "error": None, "last": None}
    except TrainingInterrupted as interrupted:
        outcome = {"status": "interrupted", "error": None, "last": str(interrupted.last) if interrupted.last else None}
    except KeyboardInterrupt:
        outcome = {"status": "interrupted", "error": None, "last": str(last) if last.is_file() else None}
    except Exception as error:  # the runner reports it and goes on with the other runs
        traceback.print_exc()
        outcome = {"status": "failed", "error": f"{type(error).__name__}: {first_line(error)}", "last": None}
    write_text_atomic(Path(spec["outcome"]), json.dumps(outcome) + "\n")
    return outcome


def main(argv: list[str] | None = None) -> int:
    import cloudpickle

    argv = sys.argv[1:] if argv is None else argv
    with sigterm_as_ctrl_c():
        with open(argv[0], "rb") as handle:
            spec = cloudpickle.load(handle)
        outcome = run_spec(spec)
    sys.stdout.flush()
    return {"finished": 0, "failed": 1, "interrupted": 130}[outcome["status"]]


if __name__ == "__main__":
    sys.exit(main())
