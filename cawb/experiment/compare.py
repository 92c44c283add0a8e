"""The cos-vs-CAWB comparison runner behind ``scripts/compare.py``: plan, run/skip/resume each (arm, seed), collect.

An arm is a hyp file; every arm is trained once per seed with the same shared settings, through
:func:`cawb.training.train.train` (the trainer ``train_cawb.py`` runs), and each run's ``weights/last.pt`` ("final") and
``weights/best.pt`` ("best epoch") are evaluated with pycocotools (:func:`cawb.experiment.evaluate.evaluate_coco`).
:mod:`cawb.experiment.report` then writes the table, figures and summary.

Layout under ``project``::

    runs/<arm label>-seed<k>/    one ultralytics run dir per (arm, seed); the arm label is its hyp file's stem
        run.json                 the settings that define the run (written before training starts)
        eval.json                its evaluation record: written atomically last, it marks the run finished
        eval/{final,best}/predictions.json
        compare.log progress.json   (--jobs N > 1: the worker's log and its progress for the live view)
    runs/<arm label>-seed<k>.aside-<n>/   an earlier attempt moved aside, never deleted (see below)
    locks/<arm label>-seed<k>.lock        while a process works on the run (host, pid, worker pid, token)
    locks/report.lock, locks/report.json  while a report is written / which results the last report holds
    table.md table.csv summary.json lr.png map.png      (table-2.md ... when an earlier report is kept)

Rerunning the same command: a run with ``eval.json`` is skipped; one with ``weights/last.pt`` resumes from it (or
is only evaluated when its training had finished); any other is trained from the start, its directory moved aside
first unless it holds only what a failed start leaves (see :func:`prepare_run`). A run dir whose ``run.json``
differs from the planned settings (other epochs, batch, hyp file content, ...) is refused before anything trains,
so results of different setups never mix in one table.

Several processes may share a project (``--shard K/N``: a fixed part of the plan each; or the same command on
several machines): a process works on a run only while it holds the run's lock file (:mod:`cawb.utils.locks`), and
decides what to do with it from the run dir as it is then. The report is written by the process that sees every
planned run finished after finishing its own (guarded by ``locks/report.lock``), or by ``--report-only``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from cawb.experiment.report import (
    ARTICLE_EFFECT,
    METRICS,
    Arm,
    ReportPaths,
    RunRecord,
    display_path,
    report_paths,
    write_report,
)
from cawb.hyp import load_hyp, schedule_from_hyp
from cawb.schedule import scale_restart_epochs
from cawb.training.train import TrainingInterrupted, checkpoint_finished, plan_run, train
from cawb.training.ultralytics_settings import check_device
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.locks import FileLock, Heartbeat, LockOwner, acquire_lock, read_lock_owner, stale_reason
from cawb.utils.resources import bundled_data, bundled_hyp, resolve_data, resolve_hyp
from cawb.utils.user_files import UserFileError, check_output_dir

if TYPE_CHECKING:  # cawb.datasets.resolve pulls in OpenCV: imported where it is used, so --help stays quick
    from cawb.datasets.resolve import ResolvedDataset
    from cawb.experiment.parallel import Slot

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_PRESET",
    "PRESETS",
    "CompareSettings",
    "ComparisonInterrupted",
    "ComparisonPlan",
    "ComparisonResult",
    "ExecutionOptions",
    "check_execution",
    "compare",
    "describe_plan",
    "execute_plan",
    "execute_run",
    "first_line",
    "parse_shard",
    "plan_comparison",
    "prepare_run",
    "read_epoch_metrics",
    "report_finished",
    "resolve_settings",
    "shard_runs",
]

#: Named settings; flags given with a preset override its values.
PRESETS: dict[str, dict[str, Any]] = {
    # The seed article: YOLOv5s of release v5.0 from scratch, 150 epochs, 640 px, batch 16 (v5.0's default) on the
    # 10k/1k COCO2017 subsets, 3 seeds.
    "article": {
        "data": bundled_data("coco10k.yaml"),
        "arms": [bundled_hyp("hyp.scratch-cos.yaml"), bundled_hyp("hyp.scratch-cawb.yaml")],
        "seeds": [0, 1, 2],
        "epochs": 150,
        "cfg": "yolov5s-v5.0.yaml",
        "batch": 16,
        "imgsz": 640,
        "device": "0",
        "project": "runs/compare",
    },
    # Offline and CPU-sized: the article's recipe at nano size: the generated shapes dataset, v5.0's layout at nano
    # size (yolov5n-v5.0, not part of v5.0) at 128 px, the shapes hyp files with their restarts scaled to 60 epochs.
    # 60, not the files' 20: v5.0's loss is about 100x smaller than ultralytics' and SGD at lr0 0.01 moves it
    # slowly; measured on this preset's data, 20 epochs ended near mAP50 0.05 and 60 near 0.45 (docs/RESULTS.md).
    "cpu": {
        "data": bundled_data("shapes.yaml"),
        "arms": [bundled_hyp("hyp.shapes-cos.yaml"), bundled_hyp("hyp.shapes-cawb.yaml")],
        "seeds": [0, 1],
        "epochs": 60,
        "cfg": "yolov5n-v5.0.yaml",
        "batch": 16,
        "imgsz": 128,
        "device": "cpu",
        "workers": 0,
        "project": "runs/compare-cpu",
    },
}
#: The preset whose values fill in what the flags leave out when no preset is named.
DEFAULT_PRESET = "article"
#: Settings an arm's hyp file may hold. Without --preset and without the flag, the arms' hyp files decide (they must
#: agree); where none sets it, DEFAULT_PRESET's value is used. With --preset, the preset's value is used.
FROM_HYP = ("epochs", "batch", "imgsz")
#: Seconds after which a run's lock that its holder stopped refreshing may be taken over (--lock-timeout).
DEFAULT_LOCK_TIMEOUT = 600.0

# ultralytics keys the runner sets itself (per run or shared): not accepted as key=value overrides.
_RUNNER_KEYS = frozenset({"data", "cfg", "model", "hyp", "epochs", "batch", "imgsz", "device", "workers", "seed",
                          "project", "name", "exist_ok", "resume", "mode", "task", "save_dir"})
# Settings without which the comparison cannot be made, with why.
_REQUIRED_ON = {"val": "map.png needs the per-epoch validation", "save": "the runs' last.pt and best.pt are evaluated"}
EVAL_RECORD = "eval.json"
RUN_RECORD = "run.json"
LOCKS = "locks"
# Files a start of training leaves before its first epoch ends (no checkpoint yet): the runner's own, ultralytics'
# args.yaml and its first plots. A run dir holding only these may be cleared for a fresh start; anything else in it
# (a checkpoint, results.csv, a file of the user's) makes the runner move the whole dir aside instead.
_START_LEFTOVERS = re.compile(r"(run\.json|compare\.log|progress\.json|args\.yaml|labels(_correlogram)?\.jpg|"
                              r"train_batch\d+\.jpg|weights)$")
# Kept when a run dir is cleared: the runner's record and the log of the failed attempt (the next is appended).
_KEPT_ON_CLEAR = {RUN_RECORD, "compare.log"}


class ComparisonInterrupted(Exception):
    """Ctrl-C (or SIGTERM): the comparison stopped; rerunning the same command continues where it stopped.

    ``run`` and ``last`` are the first interrupted run and its checkpoint (None when no epoch of it finished);
    ``interrupted`` lists every interrupted run (several with ``--jobs``)."""

    def __init__(self, run: RunRecord | None, last: Path | None,
                 others: Sequence[tuple[RunRecord, Path | None]] = ()):
        self.interrupted = ([(run, last)] if run is not None else []) + list(others)
        self.run, self.last = self.interrupted[0] if self.interrupted else (None, None)
        parts = []
        for record, checkpoint in self.interrupted:
            where = f"{record.arm} seed {record.seed}"
            parts.append(f"{where} continues from {checkpoint}" if checkpoint else
                         f"{where} starts again (no epoch of it had finished)")
        during = ", ".join(f"{record.arm} seed {record.seed}" for record, _ in self.interrupted) or "the comparison"
        super().__init__(f"interrupted during {during}; rerun the same command to continue: finished runs are "
                         "skipped" + (f" and {'; '.join(parts)}" if parts else ""))


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """The shared settings of one comparison (see :data:`PRESETS` for values). ``epochs``, ``batch`` and ``imgsz``
    None: from the arms' hyp files (see :data:`FROM_HYP`). ``workers`` None: train_cawb's default. ``overrides``:
    other ultralytics training keys, the same for every run. ``effect``: the difference per metric the "how many
    seeds" figures are computed for (default: the article's)."""

    data: Path
    arms: tuple[Path, ...]
    seeds: tuple[int, ...]
    epochs: int | None
    cfg: str
    batch: int | float | None
    imgsz: int | None
    device: str
    workers: int | None
    project: Path
    exist_ok: bool = False
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    effect: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(ARTICLE_EFFECT))


@dataclasses.dataclass(frozen=True)
class ExecutionOptions:
    """How this process runs its part of the plan; none of it changes a run's result (on the CPU, ``threads``
    does: see :func:`cawb.experiment.parallel.cpu_threads`).

    ``jobs``: runs at once (1: one after another in this process, ultralytics' log in the terminal; more: one
    worker process each, a live view). ``shard``: ``(K, N)``, this process takes the K-th of N fixed parts of the
    plan. ``threads``: CPU threads per run (None: an equal share with ``jobs`` > 1, ultralytics' choice with 1).
    ``lock_timeout``: seconds after which an unrefreshed lock may be taken over."""

    jobs: int = 1
    shard: tuple[int, int] | None = None
    threads: int | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT


@dataclasses.dataclass
class ComparisonPlan:
    """A fully checked comparison: the arms, one record per (arm, seed) with the planned action, the dataset
    and where the report goes (``paths``: as planned; the report's own paths are chosen when it is written)."""

    settings: CompareSettings
    arms: list[Arm]
    runs: list[RunRecord]
    dataset: ResolvedDataset
    paths: ReportPaths
    train_images: int
    val_images: int
    notes: list[str]
    #: where epochs, batch and imgsz came from, in words (e.g. "the arms' hyp files")
    sources: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def batches_per_epoch(self) -> int | None:
        """ceil(train images / batch); None for ultralytics' auto batch (-1 or a memory fraction)."""
        batch = self.settings.batch
        return math.ceil(self.train_images / batch) if isinstance(batch, int) and batch >= 1 else None

    def summary_settings(self) -> dict[str, Any]:
        """The settings as JSON data, for summary.json and the table's header."""
        s = self.settings
        return {"data": display_path(s.data), "arms": [display_path(arm) for arm in s.arms],
                "seeds": list(s.seeds), "epochs": self.arms[0].epochs, "cfg": s.cfg, "batch": s.batch,
                "imgsz": s.imgsz, "device": s.device,
                "workers": s.workers, "project": str(s.project), "overrides": dict(s.overrides),
                "train_images": self.train_images, "val_images": self.val_images,
                "batches_per_epoch": self.batches_per_epoch, "effect": dict(s.effect), "notes": list(self.notes)}


@dataclasses.dataclass
class ComparisonResult:
    """What a comparison left: every run's record, the report summary (None when this process wrote none) and
    its files (``report``). ``exit_code``: 1 when a run this process worked on failed (with ``report_only``: when
    a planned run is missing from the report), else 0."""

    plan: ComparisonPlan
    runs: list[RunRecord]
    summary: dict[str, Any] | None
    report: ReportPaths | None = None
    report_only: bool = False

    @property
    def failed(self) -> list[RunRecord]:
        return [run for run in self.runs if run.status == "failed"]

    @property
    def missing(self) -> list[RunRecord]:
        return [run for run in self.runs if run.status == "pending"]

    @property
    def exit_code(self) -> int:
        if self.report_only:
            return 1 if self.missing or self.failed else 0
        return 1 if self.failed else 0


def resolve_settings(preset: str | None = None, **flags: Any) -> CompareSettings:
    """Merge a preset (default :data:`DEFAULT_PRESET`) with the flags given (None values are "not given").

    Keyword flags: ``data, arms, seeds, epochs, cfg, batch, imgsz, device, workers, project, exist_ok``,
    ``overrides`` (a mapping of other ultralytics keys) and ``effect`` (metric -> difference). Without a named
    preset, ``epochs``, ``batch`` and ``imgsz`` not given stay None: :func:`plan_comparison` takes them from the
    arms' hyp files (:data:`FROM_HYP`).

    Raises:
        ValueError: an unknown preset or flag name.
    """
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ValueError(f"--preset {name!r} is unknown: choose one of {', '.join(PRESETS)}")
    fields = {field.name for field in dataclasses.fields(CompareSettings)}
    unknown = sorted(set(flags) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    given = {key: value for key, value in flags.items() if value is not None}
    values = {"epochs": None, "workers": None, **PRESETS[name], **given}
    if preset is None:
        values.update({key: None for key in FROM_HYP if key not in given})
    return CompareSettings(
        data=Path(values["data"]),
        arms=tuple(Path(arm) for arm in values["arms"]),
        seeds=tuple(values["seeds"]),
        epochs=values["epochs"],
        cfg=str(values["cfg"]),
        batch=values["batch"],
        imgsz=values["imgsz"],
        device=str(values["device"]),
        workers=values["workers"],
        project=Path(values["project"]),
        exist_ok=bool(values.get("exist_ok", False)),
        overrides=dict(values.get("overrides") or {}),
        effect={**ARTICLE_EFFECT, **dict(values.get("effect") or {})},
    )


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N (1-based: the K-th of N parts).

    Raises:
        ValueError: one line naming the value and the form allowed.
    """
    match = re.fullmatch(r"\s*(-?\d+)\s*/\s*(-?\d+)\s*", str(text))
    allowed = "give K/N with 1 <= K <= N (the K-th of N parts, 1-based), e.g. --shard 1/4"
    if not match:
        raise ValueError(f"--shard {text} is invalid: {allowed}")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text} is invalid: {allowed}")
    return k, n


def check_execution(options: ExecutionOptions) -> None:
    """The execution options' checks (one-line ValueError each), made before anything else."""
    jobs = options.jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs {jobs!r} is invalid: it must be an integer >= 1 (runs at once)")
    threads = options.threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"--threads {threads!r} is invalid: it must be an integer >= 1 (CPU threads per run)")
    if options.shard is not None:
        k, n = options.shard
        if not 1 <= k <= n:
            raise ValueError(f"--shard {k}/{n} is invalid: give K/N with 1 <= K <= N (1-based), e.g. --shard 1/4")
    timeout = options.lock_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"--lock-timeout {timeout!r} is invalid: it must be a number of seconds > 0")


def shard_runs(runs: Sequence[RunRecord], shard: tuple[int, int] | None) -> list[RunRecord]:
    """The runs of shard ``(K, N)``: every N-th run of the plan starting at the K-th (plan order: arm by arm, seed
    by seed), so each shard gets runs of every arm; all runs without a shard. The N shards partition the plan."""
    if shard is None:
        return list(runs)
    k, n = shard
    return list(runs)[k - 1::n]


def _check_settings(settings: CompareSettings) -> None:
    """The checks plan_run cannot make: the runner's own options."""
    seeds = settings.seeds
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"--seeds {' '.join(map(str, seeds)) or '(none)'} is invalid: give integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {' '.join(map(str, seeds))} repeats a seed: each (arm, seed) is one run")
    if not settings.arms:
        raise ValueError("--arms: give at least one hyp file")
    labels = [arm.stem for arm in settings.arms]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"--arms: two hyp files named {repeated[0]}: an arm is named by its file's stem, which "
                         "must be unique")
    epochs = settings.epochs
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"--epochs {epochs!r} is invalid: it must be an integer >= 1")
    for metric, value in settings.effect.items():
        if metric not in METRICS:
            raise ValueError(f"--effect: unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"--effect {value!r} for {METRICS[metric]} is invalid: give a difference in mAP "
                             "between 0 and 1, e.g. 0.008")
    for key, value in settings.overrides.items():
        if key in _RUNNER_KEYS or key.startswith("cawb"):
            where = "the arm's hyp file" if key.startswith("cawb") else "a flag of compare.py"
            raise ValueError(f"{key}={value!r} cannot be given as key=value here: it belongs in {where}")
        if key in _REQUIRED_ON and value is False:
            raise ValueError(f"{key}=False is not possible in a comparison: {_REQUIRED_ON[key]}")


def _check_before_any_work(settings: CompareSettings) -> None:
    """What is checked before the dataset is resolved (which may generate it) and any model is built: the output
    place, the dataset yaml's keys, the key=value settings and every arm's hyp file, each value as ultralytics'
    trainer would check it (one line naming the file or key: not a failed run per (arm, seed) later)."""
    from cawb.datasets.resolve import check_dataset_yaml
    from cawb.hyp import validate_hyp
    from cawb.training.ultralytics_settings import check_ultralytics_settings

    try:
        check_output_dir(settings.project, "--project")
    except UserFileError as error:
        raise ValueError(str(error)) from None
    data = check_dataset_yaml(settings.data)
    if data.get("val_json") is None or data.get("category_ids") is None:
        raise ValueError(f"--data {settings.data}: val_json and category_ids are required (pycocotools evaluates "
                         "the val split against its ground-truth JSON)")
    check_ultralytics_settings(validate_hyp(settings.overrides, source="command line"), source="command line")
    for arm in settings.arms:
        check_ultralytics_settings(load_hyp(arm), source=str(arm))


def _settings_from_hyp(settings: CompareSettings, notes: list[str]) -> tuple[CompareSettings, dict[str, str]]:
    """Fill epochs, batch and imgsz left None from the arms' hyp files (else the default preset); note where a
    flag or preset replaces values the hyp files set."""
    flags = {"epochs": "--epochs", "batch": "--batch-size", "imgsz": "--imgsz"}
    filled, sources = {}, {}
    for key in FROM_HYP:
        per_arm = {arm.stem: load_hyp(arm).get(key) for arm in settings.arms}
        set_values = {arm: value for arm, value in per_arm.items() if value is not None}
        value = getattr(settings, key)
        if value is not None:
            sources[key] = "given"
            differing = {arm: v for arm, v in set_values.items() if v != value}
            if differing and key != "epochs":  # other epochs are reported with the scaled restarts
                notes.append(f"{key} {value} replaces the hyp files' {differing}")
            continue
        if len({json.dumps(v) for v in set_values.values()}) > 1:
            raise ValueError(f"the arms' hyp files set different {key} ({set_values}): give {flags[key]}")
        if set_values:
            filled[key] = next(iter(set_values.values()))
            sources[key] = "the arms' hyp files"
        else:
            filled[key] = PRESETS[DEFAULT_PRESET][key]
            sources[key] = f"the {DEFAULT_PRESET} preset's; the arms' hyp files set none"
    return dataclasses.replace(settings, **filled), sources


def _plan_arm(path: Path, settings: CompareSettings, epochs: int, notes: list[str]) -> Arm:
    """Load and check one arm; scale its CAWB restarts when the comparison's epochs differ from its file's."""
    hyp = load_hyp(path)
    hyp_epochs = hyp.get("epochs")
    cawb = bool(hyp.get("cawb", False))
    restarts_hyp = restarts_used = None
    extra: dict[str, Any] = {}
    if cawb:
        restarts_hyp = tuple(hyp.get("cawb_steps") or ())
        restarts_used = restarts_hyp
        if isinstance(hyp_epochs, int) and hyp_epochs != epochs and restarts_hyp:
            restarts_used = tuple(scale_restart_epochs(restarts_hyp, hyp_epochs, epochs))
            extra["cawb_steps"] = list(restarts_used)
            notes.append(f"{path.stem}: restarts {list(restarts_hyp)} of {hyp_epochs} epochs scaled to "
                         f"{list(restarts_used)} of {epochs}")
    # exist_ok off: the plan checks the arm, not a run dir (those are compare's own, prepared by prepare_run);
    # restarts scaled to other epochs that fall outside the run are noted below, not refused.
    plan = plan_run(refuse_restarts_outside=False, resolve_dataset=False,
                    **{**_train_options(settings, path, epochs, settings.seeds[0], extra), "exist_ok": False})
    schedule = schedule_from_hyp(plan.overrides, source=str(path))
    effective = tuple(schedule.restart_epochs) if schedule else ()
    if schedule is not None and schedule.dropped_restart_epochs:
        dropped = ", ".join(f"{s:g}" for s in schedule.dropped_restart_epochs)
        notes.append(f"{path.stem}: restarts {dropped} ignored: a restart must come after the warmup's end "
                     f"(epoch {schedule.warmup_epochs:g}) and before the last epoch ({epochs})")
    return Arm(label=path.stem, hyp_path=path, cawb=cawb, epochs=epochs,
               hyp_epochs=hyp_epochs if isinstance(hyp_epochs, int) else None,
               settings=dict(plan.overrides), restarts_hyp=restarts_hyp, restarts_used=restarts_used,
               restarts_effective=effective)


def _train_options(settings: CompareSettings, hyp: Path, epochs: int, seed: int,
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """cawb.training.train.train() keywords for one run (the same for planning and training)."""
    options = dict(data=str(settings.data), cfg=settings.cfg, hyp=str(hyp), epochs=epochs, batch=settings.batch,
                   imgsz=settings.imgsz, device=settings.device, seed=seed,
                   project=str(settings.project.absolute() / "runs"), name=f"{hyp.stem}-seed{seed}", exist_ok=True)
    if settings.workers is not None:
        options["workers"] = settings.workers
    return {**options, **(extra or {}), **settings.overrides}


def _run_identity(settings: CompareSettings, arm: Arm, seed: int) -> dict[str, Any]:
    """What defines a run's result (not where or on which device it runs): stored in run.json and compared."""
    return {"arm": arm.label, "hyp_sha256": hashlib.sha256(arm.hyp_path.read_bytes()).hexdigest(), "seed": seed,
            "data": str(settings.data.absolute()), "cfg": settings.cfg, "epochs": arm.epochs, "batch": settings.batch,
            "imgsz": settings.imgsz,
            "cawb_steps": list(arm.restarts_used) if arm.restarts_used is not None else None,
            "overrides": json.loads(json.dumps(dict(settings.overrides), default=str))}


def read_evaluation(run_dir: Path, notes: list[str] | None = None) -> dict[str, Any] | None:
    """A run's ``eval.json``, or None when it has none; a corrupt one is named in ``notes`` and counts as none
    (the run is then evaluated again: the record is rebuilt from its weights)."""
    path = run_dir / EVAL_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not all(isinstance(record.get(weights), dict) and "map50" in record[weights] for weights in
                   ("final", "best")):
            raise ValueError("the final/best records are missing")
    except (OSError, ValueError, AttributeError) as error:
        if notes is not None:
            notes.append(f"{path} is not a readable evaluation record ({first_line(error)}): the run is evaluated "
                         "again from its weights")
        return None
    return record


def _read_run_record(run_dir: Path) -> dict[str, Any]:
    record = run_dir / RUN_RECORD
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise ValueError(f"{record} cannot be read ({first_line(error)}): it records the settings the run was made "
                         f"with. Restore it, or move {run_dir} away (its results are kept there) to train the run "
                         "again") from None
    return stored


def _plan_run_action(run_dir: Path, identity: Mapping[str, Any], notes: list[str]) -> str:
    """skip / evaluate / resume / train for one run dir, refusing one made with other settings."""
    if not run_dir.exists():
        return "train"
    if not (run_dir / RUN_RECORD).is_file():
        raise ValueError(f"{run_dir} exists but was not made by compare ({RUN_RECORD} missing): move it away or "
                         "use another --project")
    stored = _read_run_record(run_dir)
    differ = [key for key in identity if stored.get(key) != identity[key]]
    last = run_dir / "weights" / "last.pt"
    has_results = (run_dir / EVAL_RECORD).is_file() or last.is_file()
    if differ and has_results:
        changes = "; ".join(f"{key} {stored.get(key)!r} -> {identity[key]!r}" for key in differ)
        raise ValueError(f"{run_dir} was made with other settings ({changes}): use another --project, or move it "
                         "away to train it again")
    if read_evaluation(run_dir, notes) is not None:
        return "skip"
    if last.is_file():
        finished = checkpoint_finished(last)
        if finished is None:
            notes.append(f"{run_dir.name}: weights/last.pt cannot be read: the run is trained again from the start "
                         "and its directory moved aside first (nothing in it is deleted)")
            return "train"
        return "evaluate" if finished else "resume"
    return "train"


def _count_images(sources: Sequence[Path]) -> int:
    """Images of a split as ultralytics finds them: image files under the directories, lines of list files."""
    from ultralytics.data.utils import IMG_FORMATS

    count = 0
    for source in sources:
        if source.is_dir():
            count += sum(1 for f in source.rglob("*") if f.suffix[1:].lower() in IMG_FORMATS)
        else:
            count += sum(1 for line in source.read_text().splitlines() if line.strip())
    return count


def plan_comparison(settings: CompareSettings) -> ComparisonPlan:
    """Check every input and every existing run dir, and decide each run's action; nothing is trained.

    ``settings.data`` and ``settings.arms`` may name bundled files by their short names (``shapes``,
    ``scratch-cawb``); the plan's settings hold the files they resolve to.

    Raises:
        ValueError (HypError included), FileNotFoundError: one-line messages naming the flag, file or run dir.
    """
    from cawb.datasets.resolve import resolve_dataset_yaml

    settings = dataclasses.replace(settings, data=resolve_data(settings.data),
                                   arms=tuple(resolve_hyp(arm, flag="--arms") for arm in settings.arms))
    _check_settings(settings)
    _check_before_any_work(settings)
    check_device(settings.device)

    notes: list[str] = []
    settings, sources = _settings_from_hyp(settings, notes)
    arms = [_plan_arm(path, settings, settings.epochs, notes) for path in settings.arms]  # every arm checked, then
    dataset = resolve_dataset_yaml(settings.data)  # the dataset resolved (the demo's generated when missing)

    runs = []
    for arm in arms:
        for seed in settings.seeds:
            run_dir = settings.project / "runs" / f"{arm.label}-seed{seed}"
            action = _plan_run_action(run_dir, _run_identity(settings, arm, seed), notes)
            runs.append(RunRecord(arm=arm.label, seed=seed, run_dir=run_dir, action=action))
    return ComparisonPlan(settings=settings, arms=arms, runs=runs, dataset=dataset,
                          paths=report_paths(settings.project, settings.exist_ok),
                          train_images=_count_images(dataset.train), val_images=_count_images(dataset.val),
                          notes=notes, sources=sources)


def read_epoch_metrics(results_csv: Path) -> dict[str, list[float]] | None:
    """Per-epoch ``metrics/mAP50(B)`` and ``metrics/mAP50-95(B)`` of an ultralytics results.csv, by epoch.

    A resumed run may repeat an epoch (it was validated but its checkpoint not written); the last row wins.
    Returns ``{"epoch", "map50", "map50_95"}`` lists sorted by epoch, or None without the file.
    """
    if not results_csv.is_file():
        return None
    rows: dict[int, tuple[float, float]] = {}
    with open(results_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            row = {key.strip(): value for key, value in row.items() if key}
            rows[int(float(row["epoch"]))] = (float(row["metrics/mAP50(B)"]), float(row["metrics/mAP50-95(B)"]))
    epochs = sorted(rows)
    return {"epoch": epochs, "map50": [rows[e][0] for e in epochs], "map50_95": [rows[e][1] for e in epochs]}


def _best_epoch(curve: Mapping[str, list[float]] | None) -> int | None:
    """The epoch ultralytics saved as best.pt: the highest mAP50-95 (its detection fitness), the later on ties
    (it rewrites best.pt whenever an epoch equals the best fitness)."""
    if not curve or not curve["epoch"]:
        return None
    best = max(curve["map50_95"])
    return max(epoch for epoch, value in zip(curve["epoch"], curve["map50_95"]) if value == best)


def _evaluate_run(plan: ComparisonPlan, run: RunRecord) -> dict[str, Any]:
    """pycocotools (and ultralytics) mAP of last.pt and best.pt; writes eval.json atomically, last."""
    from cawb.experiment.evaluate import evaluate_coco

    settings = plan.settings
    batch = settings.batch if isinstance(settings.batch, int) and settings.batch >= 1 else 16
    record: dict[str, Any] = {"arm": run.arm, "seed": run.seed}
    for weights, file in (("final", "last.pt"), ("best", "best.pt")):
        path = run.run_dir / "weights" / file
        result = evaluate_coco(path, plan.dataset, imgsz=settings.imgsz, save_dir=run.run_dir / "eval" / weights,
                               batch=batch, device=settings.device)
        record[weights] = {"weights": str(path), "predictions": str(result["predictions"]),
                           **{key: result[key] for key in ("map50", "map50_95", "ultralytics_map50",
                                                           "ultralytics_map50_95", "stats", "num_detections")}}
    curve = read_epoch_metrics(run.run_dir / "results.csv")
    record["epochs_trained"] = len(curve["epoch"]) if curve else None
    record["best_epoch"] = _best_epoch(curve)
    write_text_atomic(run.run_dir / EVAL_RECORD, json.dumps(record, indent=2) + "\n")
    return record


def _aside_path(run_dir: Path) -> Path:
    number = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.aside-{number}")).exists():
        number += 1
    return aside


def prepare_run(plan: ComparisonPlan, run: RunRecord, log: Callable[[str], None] = print) -> None:
    """Make a run dir ready for its action; for ``train`` (from the start) an existing dir is never deleted:

    * when it holds only what a start of training leaves before its first epoch ends (run.json, compare.log,
      progress.json, ultralytics' args.yaml and first plots, an empty weights/), those ultralytics files are removed
      (rebuilt by the new start) and run.json and compare.log kept (the new attempt's log is appended);
    * otherwise (a checkpoint, even an unreadable one, results.csv, eval records, any file of the user's) the whole
      directory is moved aside to ``<name>.aside-<n>`` beside it, and ``log`` says where.

    Then the dir and its run.json are (re)made. Other actions need nothing.
    """
    if run.action != "train":
        return
    run_dir = run.run_dir
    if run_dir.exists():
        entries = list(run_dir.iterdir())
        weights = run_dir / "weights"
        only_leftovers = all(_START_LEFTOVERS.fullmatch(entry.name) for entry in entries) and (
            not weights.exists() or (weights.is_dir() and not any(weights.iterdir())))
        if only_leftovers:
            for entry in entries:
                if entry.name not in _KEPT_ON_CLEAR:
                    entry.rmdir() if entry.is_dir() else entry.unlink()
        else:
            aside = _aside_path(run_dir)
            run_dir.rename(aside)
            log(f"compare: {run.arm} seed {run.seed}: {run_dir} holds an earlier attempt that cannot be resumed; "
                f"moved aside to {aside} (nothing deleted), training from the start")
    arm = next(arm for arm in plan.arms if arm.label == run.arm)
    identity = json.dumps(_run_identity(plan.settings, arm, run.seed), indent=2)
    if run_dir.exists():
        write_text_atomic(run_dir / RUN_RECORD, identity)
        return
    # Made whole under a temporary name, then renamed into place: another process planning meanwhile never sees
    # the run dir without its run.json (which it would refuse as "not made by compare").
    draft = run_dir.with_name(f".{run_dir.name}.new-{os.getpid()}")
    shutil.rmtree(draft, ignore_errors=True)  # only ever our own draft: the name holds our pid
    draft.mkdir(parents=True)
    write_text_atomic(draft / RUN_RECORD, identity)
    os.rename(draft, run_dir)


def execute_run(plan: ComparisonPlan, run: RunRecord, callbacks: Mapping[str, Callable] | None) -> None:
    """Bring one prepared run (:func:`prepare_run`) to finished: train / resume / evaluate as planned (skip: read
    its record). Used in this process with ``--jobs 1`` and by each worker process otherwise."""
    settings = plan.settings
    arm = next(arm for arm in plan.arms if arm.label == run.arm)
    if run.action == "train":
        extra = {"cawb_steps": list(arm.restarts_used)} if arm.restarts_scaled else {}
        train(callbacks=dict(callbacks or {}), refuse_restarts_outside=False,
              **_train_options(settings, arm.hyp_path, arm.epochs, run.seed, extra))
    elif run.action == "resume":
        resume = {"resume": str(run.run_dir / "weights" / "last.pt"), "device": settings.device}
        if settings.workers is not None:
            resume["workers"] = settings.workers
        train(callbacks=dict(callbacks or {}), **resume)
    evaluation = read_evaluation(run.run_dir) if run.action == "skip" else None
    run.evaluation = evaluation if evaluation is not None else _evaluate_run(plan, run)
    run.curve = read_epoch_metrics(run.run_dir / "results.csv")
    run.status = "finished"


def first_line(error: BaseException) -> str:
    """The first line of an error's message ("" for none): tracebacks stay in the log, records keep one line."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


_ACTION_WORDS = {"skip": "finished earlier, skipped", "evaluate": "training finished earlier, evaluating",
                 "resume": "resuming from weights/last.pt", "train": "training"}


class _Claims:
    """The run locks this process holds (in ``<project>/locks``), refreshed by a heartbeat thread."""

    def __init__(self, project: Path, timeout: float):
        self.directory = project / LOCKS
        self.timeout = timeout
        self.heartbeat = Heartbeat(interval=max(1.0, min(60.0, timeout / 4)))
        self.held: dict[str, FileLock] = {}

    def path(self, run: RunRecord) -> Path:
        return self.directory / f"{run.run_dir.name}.lock"

    def claim(self, run: RunRecord) -> tuple[bool, str | None]:
        """(True, whose stale lock was taken over or None) or (False, who holds it)."""
        lock, holder = acquire_lock(self.path(run), self.timeout)
        if lock is None:
            return False, holder.describe() if holder else "another process (its lock is being written)"
        self.held[run.run_dir.name] = lock
        self.heartbeat.add(lock)
        return True, lock.taken_over

    def set_worker(self, run: RunRecord, pid: int) -> None:
        self.held[run.run_dir.name].set_worker(pid)

    def release(self, run: RunRecord) -> None:
        lock = self.held.pop(run.run_dir.name, None)
        if lock is not None:
            self.heartbeat.discard(lock)
            lock.release()

    def __enter__(self) -> _Claims:
        self.heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.held):
            lock = self.held.pop(name)
            self.heartbeat.discard(lock)
            lock.release()
        self.heartbeat.__exit__(*exc)


def _begin_run(plan: ComparisonPlan, run: RunRecord, claims: _Claims, log: Callable[[str], None]) -> bool:
    """Decide what this process does with ``run``: False when it is finished (its record read) or another process
    holds it; True when this process now holds its lock and has prepared it for its action (re-read from the run
    dir: another process may have advanced it since planning). A run that cannot be prepared is marked failed."""
    evaluation = read_evaluation(run.run_dir)
    if evaluation is not None:
        run.action, run.evaluation, run.status = "skip", evaluation, "finished"
        run.curve = read_epoch_metrics(run.run_dir / "results.csv")
        return False
    claimed, who = claims.claim(run)
    if not claimed:
        run.status, run.error = "pending", f"being run by {who}"
        return False
    if who:
        log(f"compare: {run.arm} seed {run.seed}: took over the stale lock of {who}")
    try:
        notes: list[str] = []
        arm = next(arm for arm in plan.arms if arm.label == run.arm)
        run.action = _plan_run_action(run.run_dir, _run_identity(plan.settings, arm, run.seed), notes)
        for note in notes:
            log(f"compare: {note}")
        if run.action == "skip":  # finished by another process between the check above and the claim
            claims.release(run)
            run.evaluation, run.status = read_evaluation(run.run_dir), "finished"
            run.curve = read_epoch_metrics(run.run_dir / "results.csv")
            return False
        prepare_run(plan, run, log)
    except Exception as error:
        claims.release(run)
        run.status, run.error = "failed", f"{type(error).__name__}: {first_line(error)}"
        log(f"compare: {run.arm} seed {run.seed}: FAILED: {run.error}")
        return False
    return True


def _run_sequential(plan: ComparisonPlan, mine: list[RunRecord], callbacks: Mapping[str, Callable] | None,
                    log: Callable[[str], None], claims: _Claims, threads: int | None) -> None:
    """--jobs 1: the runs one after another in this process, ultralytics' log in the terminal."""
    from cawb.experiment.parallel import cpu_threads

    total = len(mine)
    for index, run in enumerate(mine, start=1):
        where = f"compare [{index}/{total}] {run.arm} seed {run.seed}"
        if not _begin_run(plan, run, claims, log):
            if run.status == "finished":
                log(f"{where}: {_ACTION_WORDS['skip']} ({run.run_dir})")
            elif run.status == "pending":
                log(f"{where}: {run.error}: left to it")
            continue
        log(f"{where}: {_ACTION_WORDS[run.action]} ({run.run_dir})")
        try:
            with cpu_threads(threads):
                execute_run(plan, run, callbacks)
        except TrainingInterrupted as interrupted:
            raise ComparisonInterrupted(run, interrupted.last) from None
        except KeyboardInterrupt:
            last = run.run_dir / "weights" / "last.pt"
            raise ComparisonInterrupted(run, last if last.is_file() else None) from None
        except Exception as error:  # one run's failure must not cost the others: record it and go on
            run.status = "failed"
            run.error = f"{type(error).__name__}: {first_line(error)}"
            log("".join(traceback.format_exception(error)).rstrip())  # the whole story, for debugging it
            log(f"{where}: FAILED: {run.error}")
            continue
        finally:
            claims.release(run)
        final = run.evaluation["final"]
        log(f"{where}: finished, final mAP_0.5 {final['map50']:.4f} mAP_0.5:0.95 {final['map50_95']:.4f} "
            "(pycocotools)")


def _run_row(run: RunRecord, worker: Any | None, width: int = 0) -> tuple[str, str, str]:
    """One line of the live view for a run: (key, text, milestone); ``width`` aligns the names."""
    from cawb.experiment.parallel import format_duration, read_progress

    key = name = f"{run.arm} seed {run.seed}"
    name = name.ljust(width)
    if worker is not None:
        progress = read_progress(run.run_dir)
        device = f"[{'cpu' if worker.slot.device == 'cpu' else 'GPU ' + worker.slot.device}]"
        if progress is None or progress.get("updated", 0) < worker.started:  # none yet from this attempt
            state = f"starting ({_ACTION_WORDS[run.action]})"
            text, milestone = f"  {name} {device:<10} {state}", state
        else:
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
        return key, text, milestone
    if run.status == "finished":
        final = run.evaluation["final"]
        text = (f"  {name} finished: mAP_0.5 {final['map50']:.4f} mAP_0.5:0.95 {final['map50_95']:.4f} "
                "(final, pycocotools)")
        return key, text, "finished"
    if run.status == "failed":
        return key, f"  {name} FAILED: {run.error}", "failed"
    if run.error:  # held by another process
        return key, f"  {name} {run.error}", run.error
    return key, f"  {name} waiting", "waiting"


def _run_parallel(plan: ComparisonPlan, mine: list[RunRecord], callbacks: Mapping[str, Callable] | None,
                  log: Callable[[str], None], claims: _Claims, slots: list[Slot], live: Any) -> None:
    """--jobs N > 1: one worker process per run, up to N at once, in the slots' devices; a live view of all."""
    import signal

    import cloudpickle

    from cawb.experiment.parallel import RUN_LOG, Worker, worker_command, worker_environment

    queue = list(mine)
    free = list(slots)
    active: dict[str, tuple[RunRecord, Worker, Path]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="cawb-compare-"))

    def message(line: str) -> None:
        live.message(line)

    def start(run: RunRecord, slot: Slot) -> None:
        child_plan = dataclasses.replace(plan, settings=dataclasses.replace(plan.settings, device=slot.device))
        spec, outcome = workdir / f"{run.run_dir.name}.spec", workdir / f"{run.run_dir.name}.outcome.json"
        outcome.unlink(missing_ok=True)
        with open(spec, "wb") as handle:
            cloudpickle.dump({"plan": child_plan, "run": run, "callbacks": dict(callbacks or {}),
                              "threads": slot.threads, "parent_pid": os.getpid(), "outcome": str(outcome)}, handle)
        log_path = run.run_dir / RUN_LOG
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"\n==== compare: {_ACTION_WORDS[run.action]} on device {slot.device}"
                         f"{f', {slot.threads} CPU threads' if slot.threads else ''}, "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
        worker = Worker(worker_command(spec), log_path, worker_environment(slot.threads), slot,
                        run.run_dir.name)
        claims.set_worker(run, worker.pid)
        active[run.run_dir.name] = (run, worker, outcome)

    def finish(run: RunRecord, worker: Worker, outcome_path: Path, stopping: bool = False) -> dict[str, Any] | None:
        """Record a worker's outcome; ``stopping`` (after Ctrl-C): a run that did not finish is interrupted, not
        failed."""
        code = worker.poll()
        try:
            outcome = json.loads(outcome_path.read_text())
        except (OSError, ValueError):
            outcome = None
        if outcome is not None and outcome["status"] == "finished":
            run.evaluation = read_evaluation(run.run_dir)
            run.curve = read_epoch_metrics(run.run_dir / "results.csv")
            run.status = "finished" if run.evaluation is not None else "failed"
            if run.evaluation is None:
                run.error = f"{EVAL_RECORD} missing after the worker finished (log: {worker.log_path})"
        elif outcome is not None and outcome["status"] == "failed":
            run.status, run.error = "failed", f"{outcome['error']} (log: {worker.log_path})"
        elif outcome is not None:  # its worker alone was interrupted (a signal to it, not Ctrl-C of the runner)
            run.status, run.error = "failed", (f"interrupted by a signal to its worker; rerun to resume it (log: "
                                               f"{worker.log_path})")
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
            run.status, run.error = "failed", f"the worker process ended with {how} (log: {worker.log_path})"
        if stopping and run.status != "finished":
            run.status, run.error = "pending", None
        claims.release(run)
        free.append(worker.slot)
        free.sort(key=lambda slot: slot.index)
        if run.status == "failed":
            message(f"compare: {run.arm} seed {run.seed}: FAILED: {run.error}")
        return outcome

    def header() -> str:
        counts = {status: sum(run.status == status for run in mine) for status in ("finished", "failed")}
        return (f"compare --jobs {len(slots)}: {counts['finished']}/{len(mine)} finished, {len(active)} running, "
                f"{counts['failed']} failed, {len(queue)} waiting")

    width = max((len(f"{run.arm} seed {run.seed}") for run in mine), default=0)

    def refresh() -> None:
        rows = [_run_row(run, active[run.run_dir.name][1] if run.run_dir.name in active else None, width)
                for run in mine]
        live.update(header(), rows)

    message(f"compare: Ctrl-C stops every run (rerun the same command to resume them); each run's log is "
            f"<run dir>/{RUN_LOG}")

    interrupted: list[tuple[RunRecord, Path | None]] = []
    try:
        while queue or active:
            while queue and free:
                run = queue.pop(0)
                if _begin_run(plan, run, claims, message):
                    slot = free.pop(0)
                    try:
                        start(run, slot)
                    except Exception as error:  # e.g. no process could be started: this run fails, not the rest
                        claims.release(run)
                        free.append(slot)
                        run.status, run.error = "failed", f"{type(error).__name__}: {first_line(error)}"
                        message(f"compare: {run.arm} seed {run.seed}: FAILED to start: {run.error}")
            for name, (run, worker, outcome) in list(active.items()):
                if worker.poll() is not None:
                    del active[name]
                    finish(run, worker, outcome)
            refresh()
            if queue or active:
                time.sleep(0.5)
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # stop the workers without being cut short
        try:
            message(f"compare: stopping {len(active)} run(s) (ultralytics keeps each last.pt): wait, please")
            for _, worker, _ in active.values():
                worker.interrupt()
            deadline = time.time() + 120
            while any(worker.poll() is None for _, worker, _ in active.values()) and time.time() < deadline:
                time.sleep(0.2)
            for _, worker, _ in active.values():
                if worker.poll() is None:
                    worker.kill()
                    worker.process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        for name, (run, worker, outcome) in list(active.items()):
            del active[name]
            result = finish(run, worker, outcome, stopping=True)
            if run.status != "finished":
                last = (Path(result["last"]) if result and result.get("last")
                        else run.run_dir / "weights" / "last.pt")
                interrupted.append((run, last if last.is_file() else None))
        refresh()
        live.close()
        raise ComparisonInterrupted(None, None, interrupted) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # our own spec files
    live.close()


def _collect(plan: ComparisonPlan, claims_dir: Path, timeout: float, mine: Sequence[RunRecord]) -> None:
    """Fill in the records of the runs this process did not finish, from their run dirs (the source of truth)."""
    own = {id(run) for run in mine}
    for run in plan.runs:
        if run.status in ("finished", "failed") and id(run) in own:
            continue
        evaluation = read_evaluation(run.run_dir)
        if evaluation is not None:
            run.evaluation, run.status, run.error = evaluation, "finished", None
            run.curve = read_epoch_metrics(run.run_dir / "results.csv")
            continue
        if run.status == "failed":
            continue
        run.status = "pending"
        lock = claims_dir / f"{run.run_dir.name}.lock"
        holder = read_lock_owner(lock)
        if lock.exists() and stale_reason(lock, timeout, holder) is None:
            run.error = f"being run by {holder.describe() if holder else 'another process'}"
        elif (run.run_dir / "weights" / "last.pt").is_file():
            run.error = "not finished (weights/last.pt: rerun to resume it)"
        else:
            run.error = "not started" if not run.run_dir.exists() else "not finished"


def _fingerprint(plan: ComparisonPlan) -> str:
    """What a report holds: the finished runs' evaluation records and the effect sizes."""
    content = {"runs": [[run.arm, run.seed, run.evaluation] for run in plan.runs if run.status == "finished"],
               "effect": dict(plan.settings.effect)}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _write_report_once(plan: ComparisonPlan, timeout: float, log: Callable[[str], None],
                       skip_if_written: bool) -> tuple[dict[str, Any] | None, ReportPaths | None]:
    """Write the report under ``locks/report.lock`` (one writer at a time; the report files are chosen then) and
    record it in ``locks/report.json``. With ``skip_if_written``, a report of exactly these results written
    before (by another shard that finished at the same time) is not written again."""
    directory = plan.settings.project / LOCKS
    lock, holder = acquire_lock(directory / "report.lock", timeout)
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
        owner: LockOwner = lock.owner
        write_text_atomic(record_path, json.dumps({"fingerprint": fingerprint, "writer": owner.describe(),
                                                   "written": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                   "table_md": str(paths.table_md)}, indent=2) + "\n")
        plan.paths = paths
        log(f"compare: report written: {', '.join(str(path) for path in paths.all())}")
        return summary, paths
    finally:
        lock.release()


def execute_plan(plan: ComparisonPlan, callbacks: Mapping[str, Callable] | None = None,
                 log: Callable[[str], None] = print, execution: ExecutionOptions = ExecutionOptions(),
                 live: Any = None) -> ComparisonResult:
    """Run this process's share of the planned runs, then write the report when it is this process's turn.

    A run is worked on only while this process holds its lock; a run another process holds is left to it. A run
    that raises is recorded as failed (one-line error) and the others go on. ``callbacks`` (ultralytics events ->
    functions of the trainer) are added to every run that trains; with ``jobs`` > 1 they travel to the worker
    processes with cloudpickle. ``live`` is the :class:`cawb.utils.live_view.LiveView` of ``jobs`` > 1 (default:
    one on stdout).

    The report: without ``shard``, written from the finished runs (failed ones listed) unless another process still
    holds a run; with ``shard``, written only when every planned run is finished, once (a shard that finishes at
    the same time finds it written).

    Raises:
        ComparisonInterrupted: Ctrl-C (or SIGTERM turned into it by the caller); every worker is stopped first and
            no report is written.
    """
    check_execution(execution)
    mine = shard_runs(plan.runs, execution.shard)
    with _Claims(plan.settings.project, execution.lock_timeout) as claims:
        if execution.jobs == 1:
            _run_sequential(plan, mine, callbacks, log, claims, execution.threads)
        else:
            from cawb.experiment.parallel import deal_devices
            from cawb.utils.live_view import LiveView

            slots, _ = deal_devices(plan.settings.device, execution.jobs, execution.threads,
                                    cuda_devices=_cuda_devices(plan.settings.device))
            _run_parallel(plan, mine, callbacks, log, claims, slots, live if live is not None else LiveView())
    _collect(plan, plan.settings.project / LOCKS, execution.lock_timeout, mine)

    summary = paths = None
    unfinished = [run for run in plan.runs if run.status != "finished"]
    held = [run for run in unfinished if run.status == "pending" and (run.error or "").startswith("being run by")]
    if execution.shard is not None and unfinished:
        finished = len(plan.runs) - len(unfinished)
        log(f"compare: shard {execution.shard[0]}/{execution.shard[1]} done; {finished} of {len(plan.runs)} planned "
            "runs finished, so no report yet: the process that finishes the last run writes it "
            "(or add --report-only to this command for a report of what has finished)")
    elif held:
        log(f"compare: {len(held)} run(s) are being run by other processes "
            f"({'; '.join(f'{run.arm} seed {run.seed}: {run.error}' for run in held)}): the last to finish writes "
            "the report (or add --report-only to this command for a report of what has finished)")
    elif any(run.status == "finished" for run in plan.runs):
        summary, paths = _write_report_once(plan, execution.lock_timeout, log,
                                            skip_if_written=execution.shard is not None)
    else:
        log("compare: no run finished: no report written")
    result = ComparisonResult(plan=plan, runs=plan.runs, summary=summary, report=paths)
    if result.failed:
        log(f"compare: {len(result.failed)} run(s) failed: "
            + "; ".join(f"{run.arm} seed {run.seed}" for run in result.failed)
            + ". Rerun the same command to retry them (finished runs are skipped).")
    return result


def _cuda_devices(device: str) -> int | None:
    """How many GPUs ultralytics would see for device "" (its own choice); None otherwise."""
    if device.strip():
        return None
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def report_finished(plan: ComparisonPlan, log: Callable[[str], None] = print,
                lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> ComparisonResult:
    """``--report-only``: the report of the runs finished so far, listing the missing ones; nothing trains.

    Raises:
        ValueError: no planned run has finished (nothing to report).
    """
    _collect(plan, plan.settings.project / LOCKS, lock_timeout, ())
    if not any(run.status == "finished" for run in plan.runs):
        raise ValueError(f"--report-only: no finished run under {plan.settings.project / 'runs'} (none of the "
                         f"{len(plan.runs)} planned runs has an {EVAL_RECORD}): nothing to report; give the --project "
                         "and the settings of the comparison that ran")
    summary, paths = _write_report_once(plan, lock_timeout, log, skip_if_written=False)
    result = ComparisonResult(plan=plan, runs=plan.runs, summary=summary, report=paths, report_only=True)
    if result.missing:
        log(f"compare: {len(result.missing)} of {len(plan.runs)} planned runs are missing from the report: "
            + "; ".join(f"{run.arm} seed {run.seed} ({run.error})" for run in result.missing))
    return result


def describe_plan(plan: ComparisonPlan, execution: ExecutionOptions = ExecutionOptions()) -> list[str]:
    """The plan in a few lines: arms x seeds, what happens to each run, the scaled restarts, the report files,
    and how this process runs its share (shard, jobs, devices)."""
    counts = {action: sum(run.action == action for run in plan.runs) for action in _ACTION_WORDS}
    s = plan.settings
    source = {key: f" ({where})" for key, where in plan.sources.items() if where != "given"}
    lines = [f"compare: {len(plan.arms)} arm(s) x {len(s.seeds)} seed(s) = {len(plan.runs)} runs "
             f"({', '.join(arm.label for arm in plan.arms)}; seeds {', '.join(map(str, s.seeds))}), "
             f"{plan.arms[0].epochs} epochs{source.get('epochs', '')}, {s.cfg}, imgsz {s.imgsz}"
             f"{source.get('imgsz', '')}, batch {s.batch}{source.get('batch', '')}, device {s.device}, data "
             f"{display_path(s.data)} ({plan.train_images} train / {plan.val_images} val images): "
             + ", ".join(f"{counts[action]} {word}" for action, word in
                         (("skip", "skipped (finished)"), ("evaluate", "to evaluate"), ("resume", "to resume"),
                          ("train", "to train")) if counts[action])]
    lines += [f"compare: {note}" for note in plan.notes]
    if execution.shard is not None:
        mine = shard_runs(plan.runs, execution.shard)
        lines.append(f"compare: shard {execution.shard[0]}/{execution.shard[1]}: this process takes {len(mine)} of "
                     f"the {len(plan.runs)} runs ({', '.join(f'{run.arm} seed {run.seed}' for run in mine) or 'none'})")
    if execution.jobs > 1:
        from cawb.experiment.parallel import deal_devices

        slots, notes = deal_devices(s.device, execution.jobs, execution.threads, cuda_devices=_cuda_devices(s.device))
        where = ", ".join(slot.device + (f" ({slot.threads} thread{'s' if slot.threads > 1 else ''})"
                                         if slot.threads else "") for slot in slots)
        lines.append(f"compare: --jobs {execution.jobs}: up to {execution.jobs} runs at once, one worker process each, "
                     f"on {where}; each run's log goes to <run dir>/compare.log")
        lines += [f"compare: {note}" for note in notes]
    if plan.paths.suffix:
        lines.append(f"compare: an earlier report exists in {s.project}: this one will be written beside it as "
                     f"{plan.paths.table_md.name}, {plan.paths.summary_json.name}, ... (--exist-ok replaces it)")
    return lines


def compare(preset: str | None = None, callbacks: Mapping[str, Callable] | None = None,
            log: Callable[[str], None] = print, *, jobs: int = 1, shard: tuple[int, int] | str | None = None,
            threads: int | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, report_only: bool = False,
            live: Any = None, **flags: Any) -> ComparisonResult:
    """``scripts/compare.py``: merge the preset and flags, check everything, print the plan, run, report.

    Keyword flags as in :func:`resolve_settings`; ``jobs``, ``shard`` (``(K, N)`` or ``"K/N"``), ``threads`` and
    ``lock_timeout`` as in :class:`ExecutionOptions`. ``callbacks`` go to every training run (see
    :func:`execute_plan`); ``log`` receives the progress lines. ``report_only``: write the report of what has
    finished (:func:`report_only`), train nothing.

    Raises:
        ValueError (HypError included), FileNotFoundError: bad input, before anything trains.
        ComparisonInterrupted: Ctrl-C.
    """
    if isinstance(shard, str):
        shard = parse_shard(shard)
    execution = ExecutionOptions(jobs=jobs, shard=shard, threads=threads, lock_timeout=lock_timeout)
    check_execution(execution)
    if callbacks and jobs > 1:
        import cloudpickle

        try:
            cloudpickle.dumps(dict(callbacks))
        except Exception as error:
            raise ValueError(f"callbacks cannot be sent to the --jobs worker processes ({first_line(error)}): use "
                             "jobs=1 or picklable functions") from None
    plan = plan_comparison(resolve_settings(preset, **flags))
    if report_only:
        return report_finished(plan, log, lock_timeout)
    if execution.jobs > 1:  # a --device the slots cannot be made of is bad input: refused before anything runs
        from cawb.experiment.parallel import deal_devices

        deal_devices(plan.settings.device, jobs, threads, cuda_devices=_cuda_devices(plan.settings.device))
    for line in describe_plan(plan, execution):
        log(line)
    return execute_plan(plan, callbacks=callbacks, log=log, execution=execution, live=live)
