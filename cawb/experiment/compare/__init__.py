"""The cos-vs-CAWB comparison runner behind ``scripts/compare.py``: plan, run/skip/resume each (arm, seed), report.

An arm is a hyp file; every arm is trained once per seed with the same shared settings, through
:func:`cawb.training.train.train` (the trainer ``train_cawb.py`` runs), and each run's ``weights/last.pt`` ("final")
and ``weights/best.pt`` ("best epoch") are evaluated with pycocotools. The parts, along the comparison's seams:

* :mod:`.settings`: presets merged with the flags, the execution options, their checks;
* :mod:`.planning`: every input checked once, each arm planned once, each run's action decided;
* :mod:`.model`: :class:`Arm` and :class:`Run` with its :class:`RunStatus`;
* :mod:`.rundir`: the run-directory protocol (``run.json``, ``eval.json``, moving an attempt aside, leftovers);
* :mod:`.execution`: claiming runs (lock files shared with other processes) and running them one after another;
  :mod:`.worker_pool`, :mod:`.processes` and :mod:`.worker`: ``--jobs N``, one worker process per run;
* :mod:`.collect` and :mod:`.report`: every run's state read back, the statistics, table and figures;
* :mod:`.runner`: :func:`compare`, which does all of it.

Layout under ``project``::

    runs/<arm label>-seed<k>/    one ultralytics run dir per (arm, seed); the arm label is its hyp file's stem
        run.json eval.json eval/{final,best}/predictions.json compare.log progress.json
    runs/<arm label>-seed<k>.aside-<n>/   an earlier attempt moved aside, never deleted
    locks/<arm label>-seed<k>.lock        while a process works on the run (host, pid, worker pid, token)
    locks/report.lock, locks/report.json  while a report is written / which results the last report holds
    table.md table.csv summary.json lr.png map.png      (table-2.md ... when an earlier report is kept)

Several processes may share a project (``--shard K/N``: a fixed part of the plan each; or the same command on
several machines): the process that sees every planned run finished after finishing its own writes the report.

May import what :mod:`cawb.experiment` may. torch, ultralytics and OpenCV load inside functions.
"""

from cawb.experiment.compare.execution import ComparisonInterrupted
from cawb.experiment.compare.model import Action, Arm, Run, RunStatus
from cawb.experiment.compare.planning import ComparisonPlan, plan_comparison, shard_runs
from cawb.experiment.compare.rundir import read_epoch_metrics
from cawb.experiment.compare.runner import ComparisonResult, compare, describe_plan, execute_plan, report_finished
from cawb.experiment.compare.settings import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_PRESET,
    FROM_HYP,
    PRESETS,
    CompareSettings,
    ExecutionOptions,
    parse_shard,
    resolve_settings,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_PRESET",
    "FROM_HYP",
    "PRESETS",
    "Action",
    "Arm",
    "CompareSettings",
    "ComparisonInterrupted",
    "ComparisonPlan",
    "ComparisonResult",
    "ExecutionOptions",
    "Run",
    "RunStatus",
    "compare",
    "describe_plan",
    "execute_plan",
    "parse_shard",
    "plan_comparison",
    "read_epoch_metrics",
    "report_finished",
    "resolve_settings",
    "shard_runs",
]
