"""The CAWB tuner behind ``scripts/tune.py``: an Optuna study over the restart scheme and the CAWB settings.

Every trial trains with :func:`cawb.training.train.train` (the trainer ``train_cawb.py`` runs) from the base hyp
file, with the values the trial draws from the search space (:mod:`cawb.experiment.tune_space`) on top. The
pieces are Optuna's own:

* **sampler**: TPE (multivariate, grouped for the define-by-run restart positions), seeded per trial with
  ``seed + trial number``, so one worker's study is reproducible and concurrent workers never draw alike;
* **pruner**: :class:`RestartGracePruner`, Optuna's ``MedianPruner`` with one rule added: no pruning in the first
  ``restart_grace`` epochs after a restart, where the metric dips by design (:func:`in_restart_grace`). The metric
  is reported after every epoch (an ultralytics ``on_fit_epoch_end`` callback); a pruned trial stops training
  cleanly (``trainer.stop``, its run dir intact) and is kept as PRUNED with the epoch it reached;
* **storage**: any Optuna RDB URL (default SQLite ``<project>/study.db``), with heartbeats, so a worker that dies
  leaves its trial FAIL, not RUNNING forever. ``trials`` is the study's total of finished (complete or pruned)
  trials: Optuna's ``MaxTrialsCallback`` counting finished and running trials stops every worker sharing the
  study at that total; a rerun continues. An interrupted or failed trial ends FAIL and does not count.

Layout under ``project``::

    study.db            the default storage (SQLite)
    tune.json           which study the directory belongs to (one study per project directory)
    trials/trial-<n>/   one ultralytics run dir per trial (an existing one is moved aside, never overwritten)
    best_hyp.yaml trials.csv history.png importance.png lr-best.png     (rewritten after every worker's run)
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from cawb.experiment import compare
from cawb.experiment.tune_report import (
    EPOCHS_ATTR,
    ERROR_ATTR,
    FRACTIONS_ATTR,
    HYP_ATTR,
    METRICS,
    OUTPUT_NAMES,
    RESTARTS_ATTR,
    RUN_DIR_ATTR,
    TuneResult,
    describe_hyp,
    error_line,
    trial_counts,
    write_outputs,
)
from cawb.experiment.tune_space import Choices, Range, SearchSpace, effective_warmup, load_space, restart_slots
from cawb.hyp import HypError, ultralytics_defaults
from cawb.training.train import ARTICLE_DEFAULTS, TrainingInterrupted, plan_run, train
from cawb.training.ultralytics_settings import check_device
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.resources import bundled_hyp, resolve_data, resolve_hyp
from cawb.utils.user_files import UserFileError, check_output_dir

__all__ = [
    "CPU_PRESET_MODEL",
    "PRESETS",
    "RestartGracePruner",
    "TrialSeededTPESampler",
    "TuneInterrupted",
    "TunePlan",
    "TuneSettings",
    "in_restart_grace",
    "open_study",
    "plan_tune",
    "resolve_settings",
    "tune",
]

_METRIC_KEYS = {"map50": "metrics/mAP50(B)", "map50-95": "metrics/mAP50-95(B)"}

# compare's cpu preset is the one source of the offline CPU setup (data, sizes, device); its comparison-specific
# entries are left out, and the model and epochs are the demo's (see PRESETS).
_COMPARE_ONLY = frozenset({"arms", "seeds", "project"})
#: What the tuner's cpu preset trains instead of compare's (yolov5n-v5.0 for 60 epochs, the article's recipe at nano
#: size): ultralytics' yolov5n learns the shapes data in the hyp file's 20 epochs, so a 12-trial study that tells
#: schedules apart takes minutes, not hours. --cfg yolov5n-v5.0.yaml --epochs 60 tunes for the article's model.
CPU_PRESET_MODEL = {"cfg": "yolov5n.yaml", "epochs": 20}


def _preset_from_compare(name: str) -> dict[str, Any]:
    return {key: value for key, value in compare.PRESETS[name].items() if key not in _COMPARE_ONLY}


#: Named settings; flags given with a preset override its values.
PRESETS: dict[str, dict[str, Any]] = {
    # Offline, CPU-sized: compare's cpu preset (shapes data, small images, CPU), ultralytics' yolov5n for 20 epochs
    # and the shapes CAWB hyp.
    "cpu": {**_preset_from_compare("cpu"), **CPU_PRESET_MODEL, "hyp": bundled_hyp("hyp.shapes-cawb.yaml"),
            "project": "runs/tune-cpu", "trials": 12},
}
DEFAULT_PROJECT = "runs/tune"
DEFAULT_STUDY = "cawb-tune"
DEFAULT_RESTART_GRACE = 2
#: No pruning before this fraction of the epochs: from scratch, the early mAP says little about the final one (in
#: the CPU preset's study the best trial was below the median at epoch 4 of 20; docs/RESULTS.md).
DEFAULT_PRUNE_AFTER = 0.5
#: A worker stops after this many trials in a row failed (an error that repeats would otherwise loop forever).
MAX_CONSECUTIVE_FAILURES = 3
#: Median pruner: complete trials needed before any pruning.
PRUNER_STARTUP_TRIALS = 5
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_INTERVAL_S, HEARTBEAT_GRACE_S = 60, 180

# ultralytics keys the tuner sets itself (flags, per trial): not accepted as key=value.
_RUNNER_KEYS = frozenset({"data", "cfg", "model", "hyp", "epochs", "batch", "imgsz", "device", "workers", "seed",
                          "project", "name", "exist_ok", "resume", "mode", "task", "save_dir", "time"})
IDENTITY_ATTR = "cawb_tune"
MARKER = "tune.json"


class TuneInterrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped the worker; the interrupted trial ended FAIL and does not count."""


class TrialFailed(Exception):
    """A trial's training raised: recorded as FAIL (with the error in its user attributes); the study goes on."""


# --- the restart rule and the pruner -------------------------------------------------------------------------


def in_restart_grace(step: int | None, restart_epochs: Sequence[int], grace: int) -> bool:
    """Whether the report after ``step`` epochs falls in the grace after a restart, where no pruning happens.

    A restart at epoch ``s`` ends its cycle at 0-based epoch ``s`` (the boundary belongs to the cycle it ends), so
    epoch ``s + 1`` is the first trained at the new, higher peak, and its validation is the report after
    ``s + 2`` epochs. The grace covers the reports of epochs ``s + 1 .. s + grace``: steps ``s + 2 .. s + 1 + grace``.
    """
    if step is None or grace <= 0:
        return False
    return any(s + 2 <= step <= s + 1 + grace for s in restart_epochs)


class RestartGracePruner(optuna.pruners.BasePruner):
    """A pruner that never prunes in the grace after one of the trial's restarts, and asks ``inner`` otherwise.

    The trial's restart epochs are read from its ``restart_epochs`` user attribute (set before training).
    """

    def __init__(self, inner: optuna.pruners.BasePruner, restart_grace: int = DEFAULT_RESTART_GRACE):
        self.inner, self.restart_grace = inner, restart_grace

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if in_restart_grace(trial.last_step, trial.user_attrs.get(RESTARTS_ATTR, ()), self.restart_grace):
            return False
        return self.inner.prune(study, trial)


def make_pruner(prune: bool, restart_grace: int, warmup_epochs: float, epochs: int = 0,
                prune_after: float = 0.0) -> optuna.pruners.BasePruner:
    """The study's pruner: none, or the median pruner with the restart grace. Its first reports are never pruned
    either: the first ``ceil(warmup) + grace`` (the warmup ends in a restart from zero), and all before
    ``prune_after`` of the ``epochs``."""
    if not prune:
        return optuna.pruners.NopPruner()
    first = max(math.ceil(warmup_epochs) + restart_grace, math.ceil(prune_after * epochs))
    median = optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=first)
    return RestartGracePruner(median, restart_grace)


class TrialSeededTPESampler(optuna.samplers.BaseSampler):
    """Optuna's TPE whose random state for trial ``n`` is seeded with ``seed + n``.

    One fixed seed in every worker would make concurrent workers draw the same startup trials; seeding by the
    trial number (unique in a study) keeps one worker's study reproducible and the workers' draws apart. Besides its
    random state, TPE keeps only caches of what it reads from the study's history, so a fresh one per trial
    samples as one long-lived sampler would.
    """

    def __init__(self, seed: int):
        self._seed = seed
        self._tpe = self._make(seed)

    @staticmethod
    def _make(seed: int) -> optuna.samplers.TPESampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group=True is "experimental"
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._tpe = self._make(self._seed + trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:  # the seed is per trial by design
        pass


# --- settings and plan ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TuneSettings:
    """What the command line asked for (None: the trainer's default, as train_cawb.py)."""

    data: str | None
    hyp: Path | None
    trials: int | None
    cfg: str | None = None
    epochs: int | None = None
    imgsz: int | None = None
    batch: int | float | None = None
    device: str | None = None
    workers: int | None = None
    storage: str | None = None
    study_name: str = DEFAULT_STUDY
    project: Path = Path(DEFAULT_PROJECT)
    metric: str = "fitness"
    space: Path | None = None
    prune: bool = True
    prune_after: float = DEFAULT_PRUNE_AFTER
    restart_grace: int = DEFAULT_RESTART_GRACE
    seed: int = 0
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def resolve_settings(preset: str | None = None, **flags: Any) -> TuneSettings:
    """Merge a preset with the flags given (None values are "not given").

    Raises:
        ValueError: an unknown preset or option, or a required one missing (``data``, ``trials``).
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"--preset {preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    fields = {field.name for field in dataclasses.fields(TuneSettings)}
    unknown = sorted(set(flags) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    named = dict(PRESETS[preset]) if preset else {}
    overrides = {**dict(named.pop("overrides", None) or {}), **dict(flags.pop("overrides", None) or {})}
    values = {**named, **{k: v for k, v in flags.items() if v is not None}}
    if values.get("data") is None:
        raise ValueError("give --data (a dataset yaml), or --preset cpu for the offline demo")
    if values.get("trials") is None:
        raise ValueError("give --trials N: the study's total of finished trials")
    values["overrides"] = overrides
    for key in ("hyp", "project", "space"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    values.setdefault("hyp", ARTICLE_DEFAULTS["hyp"])
    values["data"] = str(values["data"])
    return TuneSettings(**{key: value for key, value in values.items() if key in fields})


@dataclasses.dataclass
class TunePlan:
    """A checked study: the space, the base run's options and settings, where everything goes."""

    settings: TuneSettings
    space: SearchSpace
    base_options: dict[str, Any]  # train() keywords shared by every trial (no project/name)
    base_settings: dict[str, Any]  # the merged settings of the base run (defaults < hyp < flags)
    epochs: int
    warmup: float
    storage_url: str
    storage_display: str
    identity: dict[str, Any]
    notes: list[str]

    @property
    def project(self) -> Path:
        return self.settings.project.absolute()

    @property
    def trials_dir(self) -> Path:
        return self.project / "trials"

    def output(self, name: str) -> Path:
        return self.project / name


def _check_int(value: Any, flag: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{flag} {value!r} is invalid: it must be an integer >= {minimum}")


def _check_overrides(overrides: Mapping[str, Any], space: SearchSpace) -> None:
    for key, value in overrides.items():
        if key in _RUNNER_KEYS:
            raise ValueError(f"{key}={value!r} cannot be given as key=value here: use the flag (--{key}) or "
                             "the base hyp file")
        if key in space.entries or (key == "cawb_steps" and space.searches_restarts):
            raise ValueError(f"{key}={value!r} contradicts the search space, which sets {key}: fix it in --space "
                             f"instead (e.g. {key}: {value})")
        if key == "cawb" and value is not True:
            raise ValueError(f"cawb={value!r}: every trial trains with CAWB; tune from a cos hyp file by giving it as "
                             "--hyp (its cawb: false is replaced)")
        if key == "val" and value is not True:
            raise ValueError("val=False is not possible: trials are compared and pruned on the validation after "
                             "every epoch")


def _check_device(device: str | None) -> None:
    if device is None:
        return
    if "," in str(device).strip(","):
        raise ValueError(f"--device {device}: a trial trains on one device; start one worker per GPU sharing "
                         "--storage and --study-name (e.g. CUDA_VISIBLE_DEVICES=1 ... --device 0)")
    check_device(device)


def _storage_url(settings: TuneSettings) -> tuple[str, str]:
    """The storage URL (sqlite paths made absolute, so that reruns from elsewhere find the same file) and how to
    show it (passwords hidden)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = settings.storage or f"sqlite:///{settings.project.absolute() / 'study.db'}"
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError(f"--storage {text!r} is not a database URL (e.g. sqlite:///runs/tune/study.db, "
                         "postgresql://user@host/db, mysql+pymysql://user@host/db)") from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser().absolute()
        if settings.storage is not None:
            if path.is_dir():
                raise ValueError(f"--storage {text}: {path} is a directory, not a database file")
            if not path.parent.is_dir():
                raise ValueError(f"--storage {text}: directory {path.parent} does not exist")
        url = url.set(database=str(path))
    elif url.drivername.startswith("sqlite"):
        raise ValueError(f"--storage {text}: an in-memory database keeps nothing; give a file "
                         "(sqlite:///path/study.db)")
    return url.render_as_string(hide_password=False), url.render_as_string(hide_password=True)


def _check_project(settings: TuneSettings, storage_display: str) -> None:
    """One project directory holds one study: refuse another study's directory, or files the tuner did not write."""
    project = settings.project.absolute()
    try:
        check_output_dir(settings.project, "--project")  # a file, under a file, read-only: refused
    except UserFileError as error:
        raise ValueError(str(error)) from None
    if not project.exists():
        return
    marker = project / MARKER
    if marker.is_file():
        try:
            owner = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"{marker}: unreadable; move it (or the directory) away, or use another --project") from None
        if (owner.get("study_name"), owner.get("storage")) != (settings.study_name, storage_display):
            raise ValueError(f"--project {settings.project} holds study '{owner.get('study_name')}' "
                             f"({owner.get('storage')}): rerun that study with its --study-name/--storage, or "
                             "give another --project")
        return
    mine = [name for name in (*OUTPUT_NAMES, "trials") if (project / name).exists()]
    if mine:
        raise ValueError(f"--project {settings.project} already holds {', '.join(mine)}, not written by a tuner "
                         "study: move them away or give another --project")


def plan_tune(settings: TuneSettings) -> TunePlan:
    """Check every input before anything is created or trained.

    Raises:
        ValueError (HypError included), FileNotFoundError: one line naming the flag, key or file.
    """
    from cawb.training.ultralytics_settings import check_ultralytics_settings

    _check_int(settings.trials, "--trials", 1)
    _check_int(settings.restart_grace, "--restart-grace", 0)
    if isinstance(settings.prune_after, bool) or not isinstance(settings.prune_after, (int, float)) or not (
            0 <= settings.prune_after < 1):
        raise ValueError(f"--prune-after {settings.prune_after!r} is invalid: a fraction of the epochs, 0 <= f < 1")
    _check_int(settings.seed, "--seed", 0)
    if settings.metric not in METRICS:
        raise ValueError(f"--metric {settings.metric!r} is invalid: choose one of {', '.join(METRICS)}")
    if not settings.study_name or not settings.study_name.strip():
        raise ValueError("--study-name must not be empty")
    # a bundled short name (--hyp shapes-cawb, --data shapes) or a path, as train_cawb.py takes them
    settings = dataclasses.replace(settings, data=str(resolve_data(settings.data)),
                                   hyp=resolve_hyp(settings.hyp) if settings.hyp is not None else None)
    if settings.hyp is not None and settings.hyp.is_dir():
        raise HypError(f"--hyp {settings.hyp}: is a directory, not a hyp file")
    space = load_space(settings.space)
    _check_overrides(settings.overrides, space)
    check_ultralytics_settings(settings.overrides, source="command line")

    base_options: dict[str, Any] = {
        key: value for key, value in {
            "data": settings.data, "cfg": settings.cfg, "hyp": str(settings.hyp) if settings.hyp else None,
            "epochs": settings.epochs, "imgsz": settings.imgsz, "batch": settings.batch,
            "device": settings.device, "workers": settings.workers, "seed": settings.seed,
        }.items() if value is not None}
    base_options.update({**settings.overrides, "cawb": True})
    _check_device(settings.device)
    storage_url, storage_display = _storage_url(settings)
    _check_project(settings, storage_display)
    # planned where the trials go (the output place is checked there), not in train_cawb's default runs/train; with
    # the space's fixed restarts, which must fall inside the trials' run (checked before the data is generated)
    fixed = {} if space.searches_restarts else {"cawb_steps": list(space.entries["cawb_steps"])}
    try:
        plan = plan_run(**{**base_options, **fixed}, project=str(settings.project.absolute() / "trials"))
    except HypError as error:
        if fixed and str(error).startswith("cawb_steps: "):
            raise HypError(f"--space {settings.space}: {error}") from None
        raise
    base_settings = {key: value for key, value in plan.overrides.items() if key not in ("project", "name")}
    check_ultralytics_settings(base_settings, source=f"{settings.hyp} + command line")
    if "plots" not in base_settings:  # neither the hyp file nor key=value sets it
        base_options["plots"] = False  # per-trial figures cost time and nobody reads them; plots=True turns them on
    epochs = base_settings.get("epochs", ultralytics_defaults()["epochs"])  # a hyp file without epochs: as ultralytics

    notes: list[str] = []
    warmup_entry = space.entries.get("warmup_epochs")  # searched: the shortest warmup leaves the most epochs
    if isinstance(warmup_entry, Range):
        lowest_warmup = warmup_entry.low
    elif isinstance(warmup_entry, Choices):
        lowest_warmup = min(warmup_entry.values)
    else:
        lowest_warmup = warmup_entry
    warmup = effective_warmup(base_settings.get("warmup_epochs"), epochs)
    if space.searches_restarts:
        shortest = warmup if lowest_warmup is None else effective_warmup(lowest_warmup, epochs)
        first, last = restart_slots(epochs, shortest)
        slots = max(last - first + 1, 0)
        if space.max_restarts() > slots:
            space = space.with_restart_limit(slots)
            notes.append(f"{slots} integer epoch(s) lie between the warmup's end ({shortest:g}) and the last epoch "
                         f"({epochs}): at most {slots} restart(s) are searched" if slots else
                         f"no integer epoch lies between the warmup's end ({shortest:g}) and the last epoch "
                         f"({epochs}): no restarts are searched (give more --epochs)")
    identity = _identity(settings, base_settings, space, epochs)
    return TunePlan(settings=settings, space=space, base_options=base_options, base_settings=base_settings,
                    epochs=epochs, warmup=warmup, storage_url=storage_url, storage_display=storage_display,
                    identity=identity, notes=notes)


def _identity(settings: TuneSettings, base: Mapping[str, Any], space: SearchSpace, epochs: int) -> dict[str, Any]:
    """What makes trials comparable (not where or on what they run): stored with the study and compared."""
    hyp_bytes = Path(settings.hyp).read_bytes() if settings.hyp else b""
    return json.loads(json.dumps({
        "data": str(Path(base["data"]).absolute()), "cfg": settings.cfg or ARTICLE_DEFAULTS["cfg"],
        "epochs": epochs, "imgsz": base.get("imgsz"), "batch": base.get("batch"), "seed": settings.seed,
        "metric": settings.metric, "base_hyp_sha256": hashlib.sha256(hyp_bytes).hexdigest(),
        "overrides": dict(settings.overrides), "space": space.as_dict(),
    }, default=str))


# --- the study -----------------------------------------------------------------------------------------------


def open_study(plan: TunePlan) -> optuna.Study:
    """Create or load the study (and the project directory), refusing one made with other settings.

    Raises:
        ValueError: the storage cannot be opened, or the study holds trials of other settings.
    """
    import sqlalchemy.exc

    if plan.settings.storage is None:
        plan.project.mkdir(parents=True, exist_ok=True)  # the default database lives there
    engine_kwargs = {"connect_args": {"timeout": 60}} if plan.storage_url.startswith("sqlite") else None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: "experimental"
                storage = optuna.storages.RDBStorage(plan.storage_url, engine_kwargs=engine_kwargs,
                                                     heartbeat_interval=HEARTBEAT_INTERVAL_S,
                                                     grace_period=HEARTBEAT_GRACE_S)
            break
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as error:
            # two workers creating a new database at the same moment: the other one's tables are there now
            racing = isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error)
            if racing and attempt < 2:
                time.sleep(1.0 + attempt)
                continue
            lines = str(error).strip().splitlines()
            raise ValueError(f"--storage {plan.storage_display}: cannot be opened "
                             f"({lines[0] if lines else error})") from None
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as error:
            lines = str(error).strip().splitlines()
            raise ValueError(f"--storage {plan.storage_display}: cannot be opened "
                             f"({lines[0] if lines else error})") from None
    settings = plan.settings
    study = optuna.create_study(study_name=settings.study_name, storage=storage, direction="maximize",
                                load_if_exists=True, sampler=TrialSeededTPESampler(settings.seed),
                                pruner=make_pruner(settings.prune, settings.restart_grace, plan.warmup, plan.epochs,
                                                   settings.prune_after))
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(f"study '{settings.study_name}' in {plan.storage_display} minimises: it is not a tuner study; "
                         "give another --study-name")
    stored = study.user_attrs.get(IDENTITY_ATTR)
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ValueError(f"study '{settings.study_name}' in {plan.storage_display} was not made by the tuner: "
                             "give another --study-name")
        study.set_user_attr(IDENTITY_ATTR, plan.identity)
    elif stored != plan.identity:
        differ = [key for key in plan.identity if stored.get(key) != plan.identity[key]]
        changes = "; ".join(f"{key} {stored.get(key)!r} -> {plan.identity[key]!r}" for key in differ)
        raise ValueError(f"study '{settings.study_name}' in {plan.storage_display} was run with other settings "
                         f"({changes}): give another --study-name (or --project), or the study's settings")
    plan.project.mkdir(parents=True, exist_ok=True)
    write_text_atomic(plan.project / MARKER, json.dumps({"study_name": settings.study_name,
                                                          "storage": plan.storage_display}, indent=2) + "\n")
    return study


def _epoch_metric(trainer: Any, metric: str) -> float | None:
    """The metric of the epoch just validated (None when ultralytics skipped validation)."""
    if metric == "fitness":
        value = getattr(trainer, "fitness", None)
    else:
        value = (getattr(trainer, "metrics", None) or {}).get(_METRIC_KEYS[metric])
    return None if value is None else float(value)


class _EpochReporter:
    """ultralytics callback: report the metric after every epoch, and stop training when the pruner says so."""

    def __init__(self, trial: optuna.trial.Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None
        self.loop_done = False

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if self.loop_done:  # ultralytics calls this event once more after validating best.pt: not an epoch
            return
        step = trainer.epoch + 1
        value = _epoch_metric(trainer, self.metric)
        self.trial.set_user_attr(EPOCHS_ATTR, step)
        if value is not None:
            self.trial.report(value, step)
        if trainer.stop:  # the last epoch, or ultralytics' own early stop
            self.loop_done = True
        elif value is not None and self.trial.should_prune():
            self.pruned_at, trainer.stop, self.loop_done = step, True, True  # ends after this epoch, run dir intact


def _move_aside(path: Path, log: Callable[[str], None]) -> None:
    """A directory in the way (a trial number reused after its study was deleted) is renamed, never overwritten."""
    if not path.exists():
        return
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.moved-{stamp}")
    counter = 2
    while target.exists():
        target = path.with_name(f"{path.name}.moved-{stamp}-{counter}")
        counter += 1
    path.rename(target)
    log(f"tune: {path} already existed (not from this study's trial); moved it to {target}")


def _final_value(result: Any, metric: str) -> float | None:
    """A trial's value: the metric of the weights ultralytics keeps (best.pt), from its final validation."""
    if metric == "map50":
        value = result.map50
    elif metric == "map50-95":
        value = result.map50_95
    else:
        value = result.metrics.get("fitness")
    return None if value is None else float(value)


def _objective(plan: TunePlan, callbacks: Mapping[str, Callable], log: Callable[[str], None]) -> Callable:
    metric = plan.settings.metric

    def objective(trial: optuna.trial.Trial) -> float:
        drawn = plan.space.suggest(trial, plan.base_settings, plan.epochs)
        trial.set_user_attr(HYP_ATTR, drawn.hyp)
        trial.set_user_attr(RESTARTS_ATTR, list(drawn.hyp["cawb_steps"]))
        if drawn.restart_fractions is not None:
            trial.set_user_attr(FRACTIONS_ATTR, [round(f, 6) for f in drawn.restart_fractions])
        run_dir = plan.trials_dir / f"trial-{trial.number}"
        _move_aside(run_dir, log)
        trial.set_user_attr(RUN_DIR_ATTR, str(run_dir))
        counts = trial_counts(trial.study)
        others = counts[TrialState.RUNNING] - 1  # this trial is running too
        log(f"tune: trial {trial.number} ({counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]} of "
            f"{plan.settings.trials} finished" + (f", {others} running elsewhere" if others else "") +
            f"): {describe_hyp(drawn.hyp)}")
        reporter = _EpochReporter(trial, metric)
        events: dict[str, list[Callable]] = {"on_fit_epoch_end": [reporter.on_fit_epoch_end]}
        for event, function in callbacks.items():
            events.setdefault(event, []).append(function)
        chained = {event: _chain(functions) for event, functions in events.items()}
        options = {**plan.base_options, **drawn.hyp, "project": str(plan.trials_dir), "name": run_dir.name,
                   "exist_ok": False}
        try:
            # a trial's restarts are drawn inside its run; one the trainer still drops is logged by it
            result = train(callbacks=chained, refuse_restarts_outside=False, **options)
        except (TrainingInterrupted, KeyboardInterrupt):
            trial.set_user_attr(ERROR_ATTR, "interrupted")
            raise
        except Exception as error:  # one trial's failure is recorded and the study goes on
            log("".join(traceback.format_exception(error)).rstrip())
            trial.set_user_attr(ERROR_ATTR, error_line(error))
            raise TrialFailed(error_line(error)) from error
        if reporter.pruned_at is not None:
            raise optuna.TrialPruned(f"after epoch {reporter.pruned_at}: behind the median of earlier trials")
        value = _final_value(result, metric)
        if value is None or not math.isfinite(value):
            trial.set_user_attr(ERROR_ATTR, f"no finite {metric} after training ({value})")
            raise TrialFailed(f"no finite {metric} after training ({value})")
        return value

    return objective


def _chain(functions: Sequence[Callable]) -> Callable:
    def call_all(trainer: Any) -> None:
        for function in functions:
            function(trainer)

    return call_all


class _TrialLog:
    """Optuna callback: one line per finished trial, and a stop after too many failures in a row."""

    def __init__(self, metric: str, log: Callable[[str], None]):
        self.metric, self.log = metric, log
        self.consecutive_failures = 0
        self.ran = 0
        self.stopped_by_failures = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.ran += 1
        if trial.state == TrialState.COMPLETE:
            best = study.best_trial
            self.log(f"tune: trial {trial.number} complete: {self.metric} {trial.value:.4f} (best {best.value:.4f}, "
                     f"trial {best.number})")
        elif trial.state == TrialState.PRUNED:
            self.log(f"tune: trial {trial.number} pruned after epoch {trial.last_step}: behind the median")
        else:
            self.log(f"tune: trial {trial.number} failed: {trial.user_attrs.get(ERROR_ATTR, 'unknown error')}")
        self.consecutive_failures = self.consecutive_failures + 1 if trial.state == TrialState.FAIL else 0
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            self.stopped_by_failures = True
            study.stop()


# --- the whole run -------------------------------------------------------------------------------------------


def tune(callbacks: Mapping[str, Callable] | None = None, log: Callable[[str], None] = print,
         preset: str | None = None, **flags: Any) -> TuneResult:
    """Plan, then run trials until the study holds ``trials`` finished ones, then write the outputs.

    ``callbacks`` (ultralytics events -> functions of the trainer) are added to every trial's training.

    Raises:
        ValueError (HypError), FileNotFoundError: bad input, before anything is created or trained.
        TuneInterrupted: Ctrl-C; the outputs of the finished trials are written first.
    """
    plan = plan_tune(resolve_settings(preset, **flags))
    for note in plan.notes:
        log(f"tune: note: {note}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial replaces Optuna's
    study = open_study(plan)
    settings = plan.settings
    trial_log = _TrialLog(settings.metric, log)
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # trials of workers that died: FAIL after the heartbeat grace
        counts = trial_counts(study)
        if counts[TrialState.COMPLETE] + counts[TrialState.PRUNED] + counts[TrialState.RUNNING] >= settings.trials:
            log(f"tune: the study already has {settings.trials} finished or running trials; raise --trials to run more")
        else:
            stop_at_total = optuna.study.MaxTrialsCallback(settings.trials, states=(*COUNTED_STATES, TrialState.RUNNING))
            study.optimize(_objective(plan, dict(callbacks or {}), log), catch=(TrialFailed,), gc_after_trial=True,
                           callbacks=[trial_log, stop_at_total])
    except (TrainingInterrupted, KeyboardInterrupt):
        result = write_outputs(plan, study, trial_log.ran, time.monotonic() - started)
        counts = result.counts
        raise TuneInterrupted(
            f"interrupted: the trial in progress ended FAIL and does not count; {counts['COMPLETE'] + counts['PRUNED']} "
            f"of {settings.trials} trials finished (outputs updated in {plan.project}); rerun the same command to "
            "continue") from None
    note = (f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed (see the errors above and in trials.csv); fix the "
            "cause and rerun the same command") if trial_log.stopped_by_failures else None
    return write_outputs(plan, study, trial_log.ran, time.monotonic() - started, note)
