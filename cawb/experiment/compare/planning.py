"""Planning a comparison: every input checked once, each arm planned once, each run's action decided; nothing trained.

The arms' hyp files are read once each (:func:`cawb.training.hyp.read_hyp_file`), every arm is planned into one
:class:`~cawb.training.config.RunConfig` by :func:`cawb.training.config.plan_run` (its runs differ only in seed and
run directory), and the dataset is resolved once, after every arm has been checked (resolving may generate the
demo dataset).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cawb.experiment.compare.model import Action, Arm, Run
from cawb.experiment.compare.report import ReportPaths, report_paths
from cawb.experiment.compare.rundir import decide_action, run_identity
from cawb.experiment.compare.settings import DEFAULT_PRESET, FROM_HYP, PRESETS, CompareSettings, check_settings
from cawb.schedule import restart_rule, scale_restart_epochs
from cawb.training.config import RunConfig, plan_run
from cawb.training.hyp import HypFile, read_hyp_file, validate_hyp
from cawb.training.tasks import trainer_data
from cawb.training.ultralytics_settings import check_device
from cawb.utils.errors import InputError
from cawb.utils.resources import resolve_data, resolve_hyp
from cawb.utils.user_files import UserFileError, check_output_dir, display_path

if TYPE_CHECKING:  # cawb.datasets.resolve pulls in OpenCV: imported where it is used, so --help stays quick
    from cawb.datasets.resolve import ResolvedDataset

__all__ = ["ACTION_WORDS", "ComparisonPlan", "plan_comparison", "run_config", "shard_runs"]

#: How the log says what happens to a run.
ACTION_WORDS = {Action.SKIP: "finished earlier, skipped", Action.EVALUATE: "training finished earlier, evaluating",
                Action.RESUME: "resuming from weights/last.pt", Action.TRAIN: "training"}


@dataclasses.dataclass
class ComparisonPlan:
    """A fully checked comparison: the arms, one :class:`Run` per (arm, seed) with its planned action, the dataset
    and where the report goes (``paths``: as planned; the report's own paths are chosen when it is written)."""

    settings: CompareSettings
    arms: list[Arm]
    runs: list[Run]
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

    def identity(self, run: Run) -> dict[str, Any]:
        """What defines ``run``'s result, as its run.json records it."""
        s = self.settings
        return run_identity(run.arm, run.seed, s.data, s.cfg, s.batch, s.imgsz, s.overrides)

    def summary_settings(self) -> dict[str, Any]:
        """The settings as JSON data, for summary.json and the table's header."""
        s = self.settings
        return {"data": display_path(s.data), "arms": [display_path(arm) for arm in s.arms],
                "seeds": list(s.seeds), "epochs": self.arms[0].epochs, "cfg": s.cfg, "batch": s.batch,
                "imgsz": s.imgsz, "device": s.device,
                "workers": s.workers, "project": str(s.project), "overrides": dict(s.overrides),
                "train_images": self.train_images, "val_images": self.val_images,
                "batches_per_epoch": self.batches_per_epoch, "effect": dict(s.effect), "notes": list(self.notes)}


def shard_runs(runs: Sequence[Run], shard: tuple[int, int] | None) -> list[Run]:
    """The runs of shard ``(K, N)``: every N-th run of the plan starting at the K-th (plan order: arm by arm, seed
    by seed), so each shard gets runs of every arm; all runs without a shard. The N shards partition the plan."""
    if shard is None:
        return list(runs)
    k, n = shard
    return list(runs)[k - 1::n]


def run_config(run: Run, settings: CompareSettings) -> RunConfig:
    """The training run of ``run``: its arm's planned configuration with the run's seed and directory."""
    return run.arm.config.with_settings({"seed": run.seed, "name": run.run_dir.name,
                                         "project": str(run.run_dir.parent.absolute())}, source=run.name)


def _check_before_any_work(settings: CompareSettings) -> list[HypFile]:
    """What is checked before the dataset is resolved (which may generate it) and any model is built: the output
    place, the dataset yaml's keys, the key=value settings and every arm's hyp file (one line naming the file or
    key: not a failed run per (arm, seed) later); a detection comparison's ground truth once the model's task is
    known (:func:`_check_coco_keys`). Returns the arms' hyp files, read once."""
    from cawb.datasets.resolve import check_dataset_yaml

    try:
        check_output_dir(settings.project, "--project")
    except UserFileError as error:
        raise InputError(str(error)) from None
    check_dataset_yaml(settings.data)
    validate_hyp(settings.overrides, source="command line")
    return [read_hyp_file(arm) for arm in settings.arms]


def _check_coco_keys(settings: CompareSettings) -> None:
    """A detection comparison is scored by pycocotools: the dataset must name its ground truth."""
    from cawb.datasets.resolve import check_dataset_yaml

    data = check_dataset_yaml(settings.data)
    if data.get("val_json") is None or data.get("category_ids") is None:
        raise InputError(f"--data {settings.data}: val_json and category_ids are required (pycocotools evaluates "
                         "the val split against its ground-truth JSON)")


def _settings_from_hyp(settings: CompareSettings, hyps: Sequence[HypFile],
                       notes: list[str]) -> tuple[CompareSettings, dict[str, str]]:
    """Fill epochs, batch and imgsz left None from the arms' hyp files (else the default preset); note where a
    flag or preset replaces values the hyp files set."""
    flags = {"epochs": "--epochs", "batch": "--batch-size", "imgsz": "--imgsz"}
    filled, sources = {}, {}
    for key in FROM_HYP:
        set_values = {hyp.path.stem: hyp.settings[key] for hyp in hyps if hyp.settings.get(key) is not None}
        value = getattr(settings, key)
        if value is not None:
            sources[key] = "given"
            differing = {arm: v for arm, v in set_values.items() if v != value}
            if differing and key != "epochs":  # other epochs are reported with the scaled restarts
                notes.append(f"{key} {value} replaces the hyp files' {differing}")
            continue
        if len({json.dumps(v) for v in set_values.values()}) > 1:
            raise InputError(f"the arms' hyp files set different {key} ({set_values}): give {flags[key]}")
        if set_values:
            filled[key] = next(iter(set_values.values()))
            sources[key] = "the arms' hyp files"
        else:
            filled[key] = PRESETS[DEFAULT_PRESET][key]
            sources[key] = f"the {DEFAULT_PRESET} preset's; the arms' hyp files set none"
    return dataclasses.replace(settings, **filled), sources


def _plan_arm(hyp: HypFile, settings: CompareSettings, notes: list[str]) -> Arm:
    """Plan one arm's run; scale its CAWB restarts when the comparison's epochs differ from its file's."""
    epochs = settings.epochs
    hyp_epochs = hyp.settings.get("epochs")
    restarts_hyp = restarts_used = None
    extra: dict[str, Any] = {}
    if hyp.settings.get("cawb", False):
        restarts_hyp = restarts_used = tuple(hyp.settings.get("cawb_steps") or ())
        if isinstance(hyp_epochs, int) and hyp_epochs != epochs and restarts_hyp:
            restarts_used = tuple(scale_restart_epochs(restarts_hyp, hyp_epochs, epochs))
            extra["cawb_steps"] = list(restarts_used)
            notes.append(f"{hyp.path.stem}: restarts {list(restarts_hyp)} of {hyp_epochs} epochs scaled to "
                         f"{list(restarts_used)} of {epochs}")
    options = dict(data=str(settings.data), cfg=settings.cfg, hyp=hyp, epochs=epochs, batch=settings.batch,
                   imgsz=settings.imgsz, device=settings.device, seed=settings.seeds[0],
                   project=str(settings.project.absolute() / "runs"), name=f"{hyp.path.stem}-seed{settings.seeds[0]}")
    if settings.workers is not None:
        options["workers"] = settings.workers
    # restarts scaled to other epochs that fall outside the run are noted below, not refused; the run dirs are
    # compare's own (prepared by prepare_run_dir), so exist_ok is the runner's business, not the plan's
    config = plan_run(refuse_restarts_outside=False, resolve_dataset=False,
                      **{**options, **extra, **settings.overrides})
    config = dataclasses.replace(config, overrides={**config.overrides, "exist_ok": True})
    schedule = config.schedule
    if schedule is not None and schedule.dropped_restart_epochs:
        dropped = ", ".join(f"{s:g}" for s in schedule.dropped_restart_epochs)
        notes.append(f"{hyp.path.stem}: restarts {dropped} ignored: the run would not make them (only "
                     f"{restart_rule(schedule.warmup_epochs, epochs)} count)")
    return Arm(label=hyp.path.stem, hyp=hyp, config=config, restarts_hyp=restarts_hyp, restarts_used=restarts_used)


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
        InputError: one-line messages naming the flag, file or run dir.
    """
    from cawb.datasets.resolve import resolve_dataset_yaml

    settings = dataclasses.replace(settings, data=resolve_data(settings.data),
                                   arms=tuple(resolve_hyp(arm, flag="--arms") for arm in settings.arms))
    check_settings(settings)
    hyps = _check_before_any_work(settings)
    check_device(settings.device)

    notes: list[str] = []
    settings, sources = _settings_from_hyp(settings, hyps, notes)
    arms = [_plan_arm(hyp, settings, notes) for hyp in hyps]  # every arm checked, then
    task = arms[0].config.task  # the model's, which every arm shares
    if task == "detect":
        _check_coco_keys(settings)
    dataset = resolve_dataset_yaml(settings.data)  # the dataset resolved (the demo's generated when missing)
    arms = [dataclasses.replace(arm, config=dataclasses.replace(
        arm.config, overrides={**arm.config.overrides, "data": trainer_data(task, dataset)})) for arm in arms]

    plan = ComparisonPlan(settings=settings, arms=arms, runs=[], dataset=dataset,
                          paths=report_paths(settings.project, settings.exist_ok),
                          train_images=_count_images(dataset.train), val_images=_count_images(dataset.val),
                          notes=notes, sources=sources)
    for arm in arms:
        for seed in settings.seeds:
            run = Run(arm=arm, seed=seed, run_dir=settings.project / "runs" / f"{arm.label}-seed{seed}")
            run.action = decide_action(run.run_dir, plan.identity(run), notes)
            plan.runs.append(run)
    return plan
