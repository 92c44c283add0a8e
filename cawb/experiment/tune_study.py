"""The tuner's Optuna study: where it is stored, which project directory it owns, how it samples and prunes.

* :func:`resolve_storage`: the ``--storage`` URL checked and made absolute (default SQLite ``<project>/study.db``);
* :func:`check_project`: one project directory holds one study (its ``tune.json`` marker says which);
* :class:`TrialSeededTPESampler`: TPE seeded with ``seed + trial number`` per trial;
* :func:`make_pruner`: the median pruner with :class:`RestartGracePruner`'s rule (:func:`in_restart_grace`);
* :func:`open_study`: create or load the study, refusing one made with other settings;
* :func:`record_process`, :func:`fail_dead_trials`: a RUNNING trial whose process on this host is gone is failed at
  once (a dead process on another host is found by the storage's heartbeat, after :data:`HEARTBEAT_GRACE_S`).

May import what :mod:`cawb.experiment` may; optuna and sqlalchemy.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from cawb.experiment.tune_report import ERROR_ATTR, OUTPUT_NAMES, PROCESS_ATTR, RESTARTS_ATTR
from cawb.experiment.tune_settings import DEFAULT_RESTART_GRACE, TunePlan
from cawb.utils.atomic_files import write_text_atomic
from cawb.utils.errors import InputError, error_line
from cawb.utils.hosts import pid_alive, this_host
from cawb.utils.user_files import UserFileError, check_output_dir

__all__ = [
    "IDENTITY_ATTR",
    "MARKER",
    "PRUNER_STARTUP_TRIALS",
    "RestartGracePruner",
    "TrialSeededTPESampler",
    "check_project",
    "describe_process",
    "fail_dead_trials",
    "in_restart_grace",
    "make_pruner",
    "open_study",
    "record_process",
    "resolve_storage",
]

#: Median pruner: complete trials needed before any pruning.
PRUNER_STARTUP_TRIALS = 5
#: Heartbeats of running trials: a trial not heard from for the grace is failed by the next worker that looks.
HEARTBEAT_INTERVAL_S, HEARTBEAT_GRACE_S = 60, 180
#: The study's user attribute holding what makes its trials comparable (``TunePlan.identity``).
IDENTITY_ATTR = "cawb_tune"
#: The file in the project directory naming the study it belongs to.
MARKER = "tune.json"


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


# --- where the study lives -----------------------------------------------------------------------------------


def resolve_storage(storage: str | None, project: Path) -> tuple[str, str]:
    """The storage URL of ``--storage`` (None: SQLite ``<project>/study.db``) and how to show it (passwords hidden).

    SQLite paths are made absolute, so that reruns from elsewhere find the same file.

    Raises:
        InputError: not a database URL, an in-memory SQLite database, a SQLite file that cannot be created (a
            directory, or one in a missing directory), or a server that cannot be reached (or its driver is missing).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = storage or f"sqlite:///{project.absolute() / 'study.db'}"
    try:
        url = make_url(text)
    except ArgumentError:
        raise InputError(f"--storage {text!r} is not a database URL (e.g. sqlite:///runs/tune/study.db, "
                         "postgresql://user@host/db, mysql+pymysql://user@host/db)") from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser().absolute()
        if storage is not None:
            if path.is_dir():
                raise InputError(f"--storage {text}: {path} is a directory, not a database file")
            if not path.parent.is_dir():
                raise InputError(f"--storage {text}: directory {path.parent} does not exist")
        url = url.set(database=str(path))
    elif url.drivername.startswith("sqlite"):
        raise InputError(f"--storage {text}: an in-memory database keeps nothing; give a file "
                         "(sqlite:///path/study.db)")
    else:
        _check_server(url)
    return url.render_as_string(hide_password=False), url.render_as_string(hide_password=True)


def _check_server(url) -> None:
    """Connect to a database server once (creating nothing), so that a missing driver or an unreachable server is
    refused before any data is generated."""
    import sqlalchemy
    import sqlalchemy.exc

    shown = url.render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise InputError(f"--storage {shown}: cannot be opened ({error_line(error)})") from None


def check_project(project: Path, study_name: str, storage_display: str) -> None:
    """Refuse a ``--project`` directory that belongs to another study (its :data:`MARKER` names it) or holds the
    tuner's output names without a marker (files the tuner did not write).

    Raises:
        InputError: one line naming ``--project`` and what is in the way.
    """
    try:
        check_output_dir(project, "--project")  # a file, under a file, read-only: refused
    except UserFileError as error:
        raise InputError(str(error)) from None
    directory = project.absolute()
    if not directory.exists():
        return
    marker = directory / MARKER
    if marker.is_file():
        try:
            owner = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{marker}: unreadable; move it (or the directory) away, or use another --project") from None
        if (owner.get("study_name"), owner.get("storage")) != (study_name, storage_display):
            raise InputError(f"--project {project} holds study '{owner.get('study_name')}' "
                             f"({owner.get('storage')}): rerun that study with its --study-name/--storage, or "
                             "give another --project")
        return
    mine = [name for name in (*OUTPUT_NAMES, "trials") if (directory / name).exists()]
    if mine:
        raise InputError(f"--project {project} already holds {', '.join(mine)}, not written by a tuner "
                         "study: move them away or give another --project")


def _open_storage(plan: TunePlan) -> optuna.storages.RDBStorage:
    """The study's storage, with heartbeats (a worker that dies leaves its trial FAIL, not RUNNING forever)."""
    import sqlalchemy.exc

    engine_kwargs = {"connect_args": {"timeout": 60}} if plan.storage_url.startswith("sqlite") else None
    retries = 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: "experimental"
                return optuna.storages.RDBStorage(plan.storage_url, engine_kwargs=engine_kwargs,
                                                  heartbeat_interval=HEARTBEAT_INTERVAL_S,
                                                  grace_period=HEARTBEAT_GRACE_S)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as error:
            # two workers creating a new database at the same moment: the other one's tables are there now
            racing = isinstance(error, sqlalchemy.exc.IntegrityError) or (
                isinstance(error, sqlalchemy.exc.OperationalError) and "already exists" in str(error))
            if racing and retries < 2:
                retries += 1
                time.sleep(retries)
                continue
            raise InputError(f"--storage {plan.storage_display}: cannot be opened ({error_line(error)})") from None


def open_study(plan: TunePlan) -> optuna.Study:
    """Create or load the study (and the project directory), refusing one made with other settings; mark the project
    directory as the study's (:data:`MARKER`).

    Raises:
        InputError: the storage cannot be opened, or the study holds trials of other settings or not of the tuner.
    """
    if plan.settings.storage is None:
        plan.project.mkdir(parents=True, exist_ok=True)  # the default database lives there
    settings = plan.settings
    study = optuna.create_study(study_name=settings.study_name, storage=_open_storage(plan), direction="maximize",
                                load_if_exists=True, sampler=TrialSeededTPESampler(settings.seed),
                                pruner=make_pruner(settings.prune, settings.restart_grace, plan.warmup, plan.epochs,
                                                   settings.prune_after))
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise InputError(f"study '{settings.study_name}' in {plan.storage_display} minimises: it is not a tuner study; "
                         "give another --study-name")
    stored = study.user_attrs.get(IDENTITY_ATTR)
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise InputError(f"study '{settings.study_name}' in {plan.storage_display} was not made by the tuner: "
                             "give another --study-name")
        study.set_user_attr(IDENTITY_ATTR, plan.identity)
    elif stored != plan.identity:
        differ = [key for key in plan.identity if stored.get(key) != plan.identity[key]]
        changes = "; ".join(f"{key} {stored.get(key)!r} -> {plan.identity[key]!r}" for key in differ)
        raise InputError(f"study '{settings.study_name}' in {plan.storage_display} was run with other settings "
                         f"({changes}): give another --study-name (or --project), or the study's settings")
    plan.project.mkdir(parents=True, exist_ok=True)
    write_text_atomic(plan.project / MARKER, json.dumps({"study_name": settings.study_name,
                                                          "storage": plan.storage_display}, indent=2) + "\n")
    return study


# --- trials of dead processes ---------------------------------------------------------------------------------


def record_process(trial: optuna.trial.Trial) -> None:
    """Name the process that trains ``trial`` (this one) in its user attributes, for :func:`fail_dead_trials`."""
    trial.set_user_attr(PROCESS_ATTR, {"host": this_host(), "pid": os.getpid()})


def describe_process(trial: FrozenTrial) -> str:
    """``host pid 123``: where a trial runs, as recorded (``an unknown process`` for a trial that did not say)."""
    process = trial.user_attrs.get(PROCESS_ATTR) or {}
    return f"{process['host']} pid {process['pid']}" if "host" in process else "an unknown process"


def fail_dead_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Mark FAIL each RUNNING trial whose recorded process ran on this host and is gone (killed, or its machine
    restarted); return them. A trial of another host, or of a process that is alive, is left to the heartbeat."""
    dead = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        process = trial.user_attrs.get(PROCESS_ATTR) or {}
        if process.get("host") != this_host() or process.get("pid") == os.getpid() or pid_alive(process["pid"]):
            continue
        storage = study._storage  # noqa: SLF001 - Optuna's own fail_stale_trials fails trials through it too
        try:
            storage.set_trial_user_attr(trial._trial_id, ERROR_ATTR, f"its process ({describe_process(trial)}) "
                                        "was gone")
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                dead.append(trial)
        except RuntimeError:  # another worker finished it (or failed it) first
            continue
    return dead
