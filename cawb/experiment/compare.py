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
    table.md table.csv summary.json lr.png map.png      (table-2.md ... when an earlier report is kept)

Rerunning the same command: a run with ``eval.json`` is skipped; one with ``weights/last.pt`` resumes from it (or
is only evaluated when its training had finished); any other is trained from the start. A run dir whose
``run.json`` differs from the planned settings (other epochs, batch, hyp file content, ...) is refused before
anything trains, so results of different setups never mix in one table.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import shutil
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from cawb.experiment.report import Arm, ReportPaths, RunRecord, display_path, report_paths, write_report
from cawb.hyp import load_hyp, schedule_from_hyp, ultralytics_defaults
from cawb.schedule import scale_restart_epochs
from cawb.training.train import TrainingInterrupted, checkpoint_finished, plan_run, train
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.resources import bundled_data, bundled_hyp, resolve_data, resolve_hyp

if TYPE_CHECKING:  # cawb.datasets.resolve pulls in OpenCV: imported where it is used, so --help stays quick
    from cawb.datasets.resolve import ResolvedDataset

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "CompareSettings",
    "ComparisonInterrupted",
    "ComparisonPlan",
    "ComparisonResult",
    "compare",
    "describe_plan",
    "execute_plan",
    "plan_comparison",
    "read_epoch_metrics",
    "resolve_settings",
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
    # size (yolov5n-v5.0, not part of v5.0) at 128 px, the shapes hyp files (20 epochs).
    "cpu": {
        "data": bundled_data("shapes.yaml"),
        "arms": [bundled_hyp("hyp.shapes-cos.yaml"), bundled_hyp("hyp.shapes-cawb.yaml")],
        "seeds": [0, 1],
        "epochs": 20,
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

# ultralytics keys the runner sets itself (per run or shared): not accepted as key=value overrides.
_RUNNER_KEYS = frozenset({"data", "cfg", "model", "hyp", "epochs", "batch", "imgsz", "device", "workers", "seed",
                          "project", "name", "exist_ok", "resume", "mode", "task", "save_dir"})
# Settings without which the comparison cannot be made, with why.
_REQUIRED_ON = {"val": "map.png needs the per-epoch validation", "save": "the runs' last.pt and best.pt are evaluated"}
EVAL_RECORD = "eval.json"
RUN_RECORD = "run.json"


class ComparisonInterrupted(Exception):
    """Ctrl-C: the comparison stopped during ``run``; rerunning the same command continues where it stopped."""

    def __init__(self, run: RunRecord, last: Path | None):
        where = f"{run.arm} seed {run.seed}"
        resumes = f"continues from {last}" if last else "starts again (no epoch of it had finished)"
        super().__init__(f"interrupted during {where}; rerun the same command to continue: finished runs are "
                         f"skipped and {where} {resumes}")
        self.run, self.last = run, last


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """The shared settings of one comparison (see :data:`PRESETS` for values). ``epochs`` None: each arm's hyp
    file's ``epochs`` (they must agree). ``workers`` None: train_cawb's default. ``overrides``: other
    ultralytics training keys, the same for every run."""

    data: Path
    arms: tuple[Path, ...]
    seeds: tuple[int, ...]
    epochs: int | None
    cfg: str
    batch: int | float
    imgsz: int
    device: str
    workers: int | None
    project: Path
    exist_ok: bool = False
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ComparisonPlan:
    """A fully checked comparison: the arms, one record per (arm, seed) with the planned action, the dataset
    and where the report goes."""

    settings: CompareSettings
    arms: list[Arm]
    runs: list[RunRecord]
    dataset: ResolvedDataset
    paths: ReportPaths
    train_images: int
    val_images: int
    notes: list[str]

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
                "batches_per_epoch": self.batches_per_epoch, "notes": list(self.notes)}


@dataclasses.dataclass
class ComparisonResult:
    """What a comparison left: every run's record, the report summary (None when no run finished) and its
    files. ``exit_code`` is 0 when every run finished, 1 otherwise."""

    plan: ComparisonPlan
    runs: list[RunRecord]
    summary: dict[str, Any] | None

    @property
    def failed(self) -> list[RunRecord]:
        return [run for run in self.runs if run.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.summary is None else 0


def resolve_settings(preset: str | None = None, **flags: Any) -> CompareSettings:
    """Merge a preset (default :data:`DEFAULT_PRESET`) with the flags given (None values are "not given").

    Keyword flags: ``data, arms, seeds, epochs, cfg, batch, imgsz, device, workers, project, exist_ok``
    and ``overrides`` (a mapping of other ultralytics keys).

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
    values = {"epochs": None, "workers": None, **PRESETS[name],
              **{key: value for key, value in flags.items() if value is not None}}
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
    )


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
    for key, value in settings.overrides.items():
        if key in _RUNNER_KEYS or key.startswith("cawb"):
            where = "the arm's hyp file" if key.startswith("cawb") else "a flag of compare.py"
            raise ValueError(f"{key}={value!r} cannot be given as key=value here: it belongs in {where}")
        if key in _REQUIRED_ON and value is False:
            raise ValueError(f"{key}=False is not possible in a comparison: {_REQUIRED_ON[key]}")


def _check_device(device: str) -> None:
    from ultralytics.utils.torch_utils import select_device

    try:
        select_device(device, verbose=False)
    except ValueError as error:
        raise ValueError(f"--device {device}: {_first_line(error)}") from None


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
    plan = plan_run(**_train_options(settings, path, epochs, settings.seeds[0], extra))
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


def _plan_run_action(run_dir: Path, identity: Mapping[str, Any], notes: list[str]) -> str:
    """skip / evaluate / resume / train for one run dir, refusing one made with other settings."""
    if not run_dir.exists():
        return "train"
    record = run_dir / RUN_RECORD
    if not record.is_file():
        raise ValueError(f"{run_dir} exists but was not made by compare ({RUN_RECORD} missing): move it away or "
                         "use another --project")
    stored = json.loads(record.read_text())
    differ = [key for key in identity if stored.get(key) != identity[key]]
    has_results = (run_dir / EVAL_RECORD).is_file() or (run_dir / "weights" / "last.pt").is_file()
    if differ and has_results:
        changes = "; ".join(f"{key} {stored.get(key)!r} -> {identity[key]!r}" for key in differ)
        raise ValueError(f"{run_dir} was made with other settings ({changes}): use another --project, or delete "
                         "it to train it again")
    if (run_dir / EVAL_RECORD).is_file():
        return "skip"
    last = run_dir / "weights" / "last.pt"
    if last.is_file():
        finished = checkpoint_finished(last)
        if finished is None:
            notes.append(f"{run_dir.name}: weights/last.pt cannot be read; it will be trained again")
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
    dataset = resolve_dataset_yaml(settings.data)
    if dataset.val_json is None or dataset.category_ids is None:
        raise ValueError(f"--data {settings.data}: val_json and category_ids are required (pycocotools evaluates "
                         "the val split against its ground-truth JSON)")
    _check_device(settings.device)

    epochs = settings.epochs
    if epochs is None:
        per_arm = {arm.stem: load_hyp(arm).get("epochs", ultralytics_defaults()["epochs"]) for arm in settings.arms}
        if len(set(per_arm.values())) > 1:
            raise ValueError(f"the arms' hyp files train for different epochs ({per_arm}): give --epochs")
        epochs = next(iter(per_arm.values()))
    notes: list[str] = []
    arms = [_plan_arm(path, settings, epochs, notes) for path in settings.arms]

    runs = []
    for arm in arms:
        for seed in settings.seeds:
            run_dir = settings.project / "runs" / f"{arm.label}-seed{seed}"
            action = _plan_run_action(run_dir, _run_identity(settings, arm, seed), notes)
            runs.append(RunRecord(arm=arm.label, seed=seed, run_dir=run_dir, action=action))
    return ComparisonPlan(settings=settings, arms=arms, runs=runs, dataset=dataset,
                          paths=report_paths(settings.project, settings.exist_ok),
                          train_images=_count_images(dataset.train), val_images=_count_images(dataset.val),
                          notes=notes)


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


def _execute_run(plan: ComparisonPlan, run: RunRecord, callbacks: Mapping[str, Callable] | None) -> None:
    """Bring one run to finished: train / resume / evaluate as planned (skip: read its record)."""
    settings = plan.settings
    arm = next(arm for arm in plan.arms if arm.label == run.arm)
    if run.action == "train":
        if run.run_dir.exists():  # an attempt that left no checkpoint: nothing in it can be resumed
            shutil.rmtree(run.run_dir)
        run.run_dir.mkdir(parents=True)
        write_text_atomic(run.run_dir / RUN_RECORD, json.dumps(_run_identity(settings, arm, run.seed), indent=2))
        extra = {"cawb_steps": list(arm.restarts_used)} if arm.restarts_scaled else {}
        train(callbacks=dict(callbacks or {}), **_train_options(settings, arm.hyp_path, arm.epochs, run.seed, extra))
    elif run.action == "resume":
        resume = {"resume": str(run.run_dir / "weights" / "last.pt"), "device": settings.device}
        if settings.workers is not None:
            resume["workers"] = settings.workers
        train(callbacks=dict(callbacks or {}), **resume)
    if run.action == "skip":
        run.evaluation = json.loads((run.run_dir / EVAL_RECORD).read_text())
    else:
        run.evaluation = _evaluate_run(plan, run)
    run.curve = read_epoch_metrics(run.run_dir / "results.csv")
    run.status = "finished"


def _first_line(error: BaseException) -> str:
    """The first line of an error's message ("" for none): tracebacks stay in the log, records keep one line."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


_ACTION_WORDS = {"skip": "finished earlier, skipped", "evaluate": "training finished earlier, evaluating",
                 "resume": "resuming from weights/last.pt", "train": "training"}


def execute_plan(plan: ComparisonPlan, callbacks: Mapping[str, Callable] | None = None,
                 log: Callable[[str], None] = print) -> ComparisonResult:
    """Run every planned (arm, seed), then write the report of the finished ones.

    A run that raises is recorded as failed (one-line error) and the others go on. ``callbacks`` (ultralytics
    events -> functions of the trainer) are added to every run that trains.

    Raises:
        ComparisonInterrupted: Ctrl-C, during training or evaluation; no report is written.
    """
    total = len(plan.runs)
    for index, run in enumerate(plan.runs, start=1):
        log(f"compare [{index}/{total}] {run.arm} seed {run.seed}: {_ACTION_WORDS[run.action]} ({run.run_dir})")
        try:
            _execute_run(plan, run, callbacks)
        except TrainingInterrupted as interrupted:
            raise ComparisonInterrupted(run, interrupted.last) from None
        except KeyboardInterrupt:
            last = run.run_dir / "weights" / "last.pt"
            raise ComparisonInterrupted(run, last if last.is_file() else None) from None
        except Exception as error:  # one run's failure must not cost the others: record it and go on
            run.status = "failed"
            run.error = f"{type(error).__name__}: {_first_line(error)}"
            log("".join(traceback.format_exception(error)).rstrip())  # the whole story, for debugging it
            log(f"compare [{index}/{total}] {run.arm} seed {run.seed}: FAILED: {run.error}")
            continue
        final = run.evaluation["final"]
        log(f"compare [{index}/{total}] {run.arm} seed {run.seed}: finished, final mAP_0.5 {final['map50']:.4f} "
            f"mAP_0.5:0.95 {final['map50_95']:.4f} (pycocotools)")

    summary = None
    if any(run.status == "finished" for run in plan.runs):
        summary = write_report(plan.arms, plan.runs, plan.summary_settings(), plan.paths)
        log(f"compare: report written: {', '.join(str(path) for path in plan.paths.all())}")
    else:
        log("compare: no run finished: no report written")
    result = ComparisonResult(plan=plan, runs=plan.runs, summary=summary)
    if result.failed:
        log(f"compare: {len(result.failed)} run(s) failed: "
            + "; ".join(f"{run.arm} seed {run.seed}" for run in result.failed)
            + ". Rerun the same command to retry them (finished runs are skipped).")
    return result


def describe_plan(plan: ComparisonPlan) -> list[str]:
    """The plan in a few lines: arms x seeds, what happens to each run, the scaled restarts, the report files."""
    counts = {action: sum(run.action == action for run in plan.runs) for action in _ACTION_WORDS}
    s = plan.settings
    lines = [f"compare: {len(plan.arms)} arm(s) x {len(s.seeds)} seed(s) = {len(plan.runs)} runs "
             f"({', '.join(arm.label for arm in plan.arms)}; seeds {', '.join(map(str, s.seeds))}), "
             f"{plan.arms[0].epochs} epochs, {s.cfg}, imgsz {s.imgsz}, batch {s.batch}, device {s.device}, data "
             f"{display_path(s.data)} ({plan.train_images} train / {plan.val_images} val images): "
             + ", ".join(f"{counts[action]} {word}" for action, word in
                         (("skip", "skipped (finished)"), ("evaluate", "to evaluate"), ("resume", "to resume"),
                          ("train", "to train")) if counts[action])]
    lines += [f"compare: {note}" for note in plan.notes]
    if plan.paths.suffix:
        lines.append(f"compare: an earlier report exists in {s.project}: this one will be written beside it as "
                     f"{plan.paths.table_md.name}, {plan.paths.summary_json.name}, ... (--exist-ok replaces it)")
    return lines


def compare(preset: str | None = None, callbacks: Mapping[str, Callable] | None = None,
            log: Callable[[str], None] = print, **flags: Any) -> ComparisonResult:
    """``scripts/compare.py``: merge the preset and flags, check everything, print the plan, run, report.

    Keyword flags as in :func:`resolve_settings`. ``callbacks`` go to every training run (see
    :func:`execute_plan`); ``log`` receives the progress lines.

    Raises:
        ValueError (HypError included), FileNotFoundError: bad input, before anything trains.
        ComparisonInterrupted: Ctrl-C.
    """
    plan = plan_comparison(resolve_settings(preset, **flags))
    for line in describe_plan(plan):
        log(line)
    return execute_plan(plan, callbacks=callbacks, log=log)

