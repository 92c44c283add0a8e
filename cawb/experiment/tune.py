"""The CAWB tuner behind ``scripts/tune.py``: a study checked once (:func:`plan_tune`), then the loop of its trials.

:func:`plan_tune` turns :class:`~cawb.experiment.tune_settings.TuneSettings` into a
:class:`~cawb.experiment.tune_settings.TunePlan`: it checks every input once, before anything is created or trained,
and plans the base run once (:func:`cawb.training.config.plan_run`, keeping its
:class:`~cawb.training.config.RunConfig`); each trial is that run with the values it draws from the search space
(:mod:`cawb.experiment.tune_space`) set on top (:meth:`RunConfig.with_settings`), trained by
:func:`cawb.training.train.train` (the trainer ``train_cawb.py`` runs). The Optuna pieces are in
:mod:`cawb.experiment.tune_study`:

* **sampler**: TPE (multivariate, grouped for the define-by-run restart positions), seeded per trial with
  ``seed + trial number``, so one worker's study is reproducible and concurrent workers never draw alike;
* **pruner**: Optuna's ``MedianPruner`` with one rule added: no pruning in the first ``restart_grace`` epochs after
  a restart, where the metric dips by design. The metric is reported after every epoch (an ultralytics
  ``on_fit_epoch_end`` callback); a pruned trial stops training cleanly (``trainer.stop``, its run dir intact) and
  is kept as PRUNED with the epoch it reached;
* **storage**: any Optuna RDB URL (default SQLite ``<project>/study.db``). Each trial records its host and process
  id: a rerun on that host fails a RUNNING trial whose process is gone at once; heartbeats fail one whose process
  died elsewhere after their grace, so a dead worker's trial never stays RUNNING. ``trials`` is the study's total
  of finished (complete or pruned) trials: Optuna's ``MaxTrialsCallback`` counting finished and running trials
  stops every worker sharing the study at that total; a rerun continues. An interrupted or failed trial ends FAIL
  and does not count.

Layout under ``project``::

    study.db            the default storage (SQLite)
    tune.json           which study the directory belongs to (one study per project directory)
    trials/trial-<n>/   one ultralytics run dir per trial (an existing one is moved aside, never overwritten)
    best_hyp.yaml trials.csv history.png importance.png lr-best.png     (rewritten after every worker's run)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

from cawb.experiment.tune_report import (
    EPOCHS_ATTR,
    ERROR_ATTR,
    FRACTIONS_ATTR,
    HYP_ATTR,
    METRIC_KEYS,
    METRICS,
    RESTARTS_ATTR,
    RUN_DIR_ATTR,
    TuneResult,
    describe_hyp,
    trial_counts,
    write_outputs,
)
from cawb.experiment.tune_settings import TunePlan, TuneSettings, resolve_settings
from cawb.experiment.tune_space import Choices, Range, SearchSpace, effective_warmup, load_space, restart_slots
from cawb.experiment.tune_study import (
    HEARTBEAT_GRACE_S,
    check_project,
    describe_process,
    fail_dead_trials,
    open_study,
    record_process,
    resolve_storage,
)
from cawb.schedule import restart_rule
from cawb.training.config import ARTICLE_DEFAULTS, RUNNER_KEYS, RunConfig, plan_run
from cawb.training.hyp import HypFile, read_hyp_file
from cawb.training.tasks import TASK_METRICS, TASK_NAMES, metric_values
from cawb.training.train import Callbacks, TrainingInterrupted, callback_lists, train
from cawb.training.ultralytics_settings import ultralytics_defaults
from cawb.utils.checks import is_number, require_int
from cawb.utils.errors import CawbError, HypError, InputError, Interrupted, error_line, is_disk_fault
from cawb.utils.resources import resolve_data, resolve_hyp
from cawb.utils.user_files import move_aside
from cawb.yolov5.recipe import fitness

__all__ = ["MAX_CONSECUTIVE_FAILURES", "TuneInterrupted", "plan_tune", "tune"]

#: A worker stops after this many trials in a row failed (an error that repeats would otherwise loop forever).
MAX_CONSECUTIVE_FAILURES = 3
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


class TuneInterrupted(Interrupted):
    """Ctrl-C (or SIGTERM) stopped the worker; the interrupted trial ended FAIL and does not count."""


class TrialFailed(CawbError):
    """A trial's training raised: recorded as FAIL (with the error in its user attributes); the study goes on."""


# --- the plan ------------------------------------------------------------------------------------------------


def _check_overrides(overrides: Mapping[str, Any], space: SearchSpace) -> None:
    """What the tuner refuses as ``key=value``: what it sets itself, what the space sets, and what trials need."""
    for key, value in overrides.items():
        if key in RUNNER_KEYS:
            raise InputError(f"{key}={value!r} cannot be given as key=value here: use the flag (--{key}) or "
                             "the base hyp file")
        if key in space.entries or (key == "cawb_steps" and space.searches_restarts):
            raise InputError(f"{key}={value!r} contradicts the search space, which sets {key}: fix it in --space "
                             f"instead (e.g. {key}: {value})")
        if key == "cawb" and value is not True:
            raise InputError(f"cawb={value!r}: every trial trains with CAWB; tune from a cos hyp file by giving it as "
                             "--hyp (its cawb: false is replaced)")
        if key == "val" and value is not True:
            raise InputError("val=False is not possible: trials are compared and pruned on the validation after "
                             "every epoch")


def _read_base_hyp(hyp: Path | None) -> HypFile:
    """The base hyp file (a path or a bundled short name; None: the article's), read and checked."""
    path = resolve_hyp(hyp if hyp is not None else ARTICLE_DEFAULTS["hyp"])
    if path.is_dir():
        raise HypError(f"--hyp {path}: is a directory, not a hyp file")
    return read_hyp_file(path)


def plan_tune(settings: TuneSettings) -> TunePlan:
    """Check every input once, before anything is created or trained, and plan the base run.

    The base hyp file is read once (its sha256 is part of the study's identity) and handed to
    :func:`~cawb.training.config.plan_run`, which checks it with the flags and ``key=value`` settings.

    Raises:
        InputError (HypError, InputFileNotFoundError included): one line naming the flag, key or file.
    """
    require_int(settings.trials, "--trials", 1)
    require_int(settings.restart_grace, "--restart-grace", 0)
    if not is_number(settings.prune_after, 0, 1, open_max=True):
        raise InputError(f"--prune-after {settings.prune_after!r} is invalid: a fraction of the epochs, 0 <= f < 1")
    require_int(settings.seed, "--seed", 0)
    if settings.metric not in METRICS:
        raise InputError(f"--metric {settings.metric!r} is invalid: choose one of {', '.join(METRICS)}")
    if not settings.study_name or not settings.study_name.strip():
        raise InputError("--study-name must not be empty")
    if settings.device is not None and "," in str(settings.device).strip(","):
        raise InputError(f"--device {settings.device}: a trial trains on one device; start one worker per GPU sharing "
                         "--storage and --study-name (e.g. CUDA_VISIBLE_DEVICES=1 ... --device 0)")
    # a bundled short name (--hyp shapes-cawb, --data shapes) or a path, as train_cawb.py takes them
    data = resolve_data(settings.data)
    base_hyp = _read_base_hyp(settings.hyp)
    settings = dataclasses.replace(settings, data=str(data), hyp=base_hyp.path)
    space = load_space(settings.space)
    _check_overrides(settings.overrides, space)
    storage_url, storage_display = resolve_storage(settings.storage, settings.project)
    check_project(settings.project, settings.study_name, storage_display)

    options: dict[str, Any] = {
        key: value for key, value in {
            "data": settings.data, "cfg": settings.cfg, "epochs": settings.epochs, "imgsz": settings.imgsz,
            "batch": settings.batch, "device": settings.device, "workers": settings.workers, "seed": settings.seed,
        }.items() if value is not None}
    options.update({**settings.overrides, "cawb": True})
    if "plots" not in base_hyp.settings and "plots" not in settings.overrides:
        options["plots"] = False  # per-trial figures cost time and nobody reads them; plots=True turns them on
    # Every trial sets its restarts: the space's fixed ones, which must fall inside the trials' run (checked before
    # the data is generated), or drawn ones; the base hyp file's are never trained, so they are not noted either.
    restarts = [] if space.searches_restarts else list(space.entries["cawb_steps"])
    trials_dir = settings.project.absolute() / "trials"
    try:
        base_config = plan_run(hyp=base_hyp, **options, cawb_steps=restarts, project=str(trials_dir))
    except HypError as error:
        if restarts and str(error).startswith("cawb_steps: "):
            raise HypError(f"--space {settings.space}: {error}") from None
        raise
    _check_metric(settings.metric, base_config.task)
    base = base_config.overrides
    epochs = base.get("epochs", ultralytics_defaults()["epochs"])  # a hyp file without epochs: as ultralytics
    assert base_config.schedule is not None  # cawb is on in every trial's run
    warmup = base_config.schedule.warmup_epochs
    space, notes = _fit_restarts(space, warmup, epochs)
    identity = _identity(settings, base_config, base_hyp.sha256, space, epochs)
    return TunePlan(settings=settings, space=space, base_config=base_config, epochs=epochs, warmup=warmup,
                    storage_url=storage_url, storage_display=storage_display, identity=identity, notes=tuple(notes))


def _check_metric(metric: str, task: str) -> None:
    """``--metric`` must be a number of the model's task (``fitness`` is every task's)."""
    keys = [m.key for m in TASK_METRICS[task]]
    if metric != "fitness" and METRIC_KEYS[metric] not in keys:
        allowed = ["fitness", *(name for name, key in METRIC_KEYS.items() if key in keys)]
        raise InputError(f"--metric {metric} is not a number of {TASK_NAMES[task]}: choose one of "
                         f"{', '.join(allowed)}")


def _fit_restarts(space: SearchSpace, warmup: float, epochs: int) -> tuple[SearchSpace, list[str]]:
    """The space with no more restarts searched than integer epochs fit between the shortest warmup and the last
    epoch, and a note when it had to be cut."""
    if not space.searches_restarts:
        return space, []
    warmup_entry = space.entries.get("warmup_epochs")  # searched: the shortest warmup leaves the most epochs
    if isinstance(warmup_entry, Range):
        shortest = effective_warmup(warmup_entry.low, epochs)
    elif isinstance(warmup_entry, Choices):
        shortest = effective_warmup(min(warmup_entry.values), epochs)
    elif warmup_entry is not None:
        shortest = effective_warmup(warmup_entry, epochs)
    else:
        shortest = warmup
    first, last = restart_slots(epochs, shortest)
    slots = max(last - first + 1, 0)
    if space.max_restarts() <= slots:
        return space, []
    rule = f"a restart s shows from the epoch after it: {restart_rule(shortest, epochs)}"
    note = (f"{slots} integer epoch(s) can hold a restart ({rule}): at most {slots} restart(s) are searched" if slots
            else f"no integer epoch can hold a restart ({rule}): no restarts are searched (give more --epochs)")
    return space.with_restart_limit(slots), [note]


def _identity(settings: TuneSettings, base_config: RunConfig, hyp_sha256: str, space: SearchSpace,
              epochs: int) -> dict[str, Any]:
    """What makes trials comparable (not where or on what they run): stored with the study and compared."""
    base = base_config.overrides
    return json.loads(json.dumps({
        "data": str(Path(base["data"]).absolute()), "cfg": settings.cfg or ARTICLE_DEFAULTS["cfg"],
        "epochs": epochs, "imgsz": base.get("imgsz"), "batch": base.get("batch"), "seed": settings.seed,
        "metric": settings.metric, "base_hyp_sha256": hyp_sha256,
        "overrides": dict(settings.overrides), "space": space.as_dict(),
    }, default=str))


# --- one trial -----------------------------------------------------------------------------------------------


def _epoch_metric(trainer: Any, metric: str, task: str) -> float | None:
    """The metric of the epoch just validated (None when ultralytics skipped validation)."""
    if metric == "fitness":
        value = getattr(trainer, "fitness", None)
    else:
        value = metric_values(task, getattr(trainer, "metrics", None) or {})[METRIC_KEYS[metric]]
    return None if value is None else float(value)


class _EpochReporter:
    """ultralytics callback: report the metric after every epoch, and stop training when the pruner says so."""

    def __init__(self, trial: optuna.trial.Trial, metric: str, task: str):
        self.trial, self.metric, self.task = trial, metric, task
        self.pruned_at: int | None = None
        self.loop_done = False

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if self.loop_done:  # ultralytics calls this event once more after validating best.pt: not an epoch
            return
        step = trainer.epoch + 1
        value = _epoch_metric(trainer, self.metric, self.task)
        self.trial.set_user_attr(EPOCHS_ATTR, step)
        if value is not None:
            self.trial.report(value, step)
        if trainer.stop:  # the last epoch, or ultralytics' own early stop
            self.loop_done = True
        elif value is not None and self.trial.should_prune():
            self.pruned_at, trainer.stop, self.loop_done = step, True, True  # ends after this epoch, run dir intact


def _final_value(result: Any, metric: str, map50_weight: float = 0.0) -> float | None:
    """A trial's value: the metric of the weights ultralytics keeps (best.pt), from its final validation; the
    fitness weighs mAP50 as the trainer did (``fitness_map50_weight``; 0: ultralytics' own)."""
    if metric == "fitness":
        if map50_weight and result.task == "detect" and result.map50 is not None and result.map50_95 is not None:
            value = fitness(result.map50, result.map50_95, map50_weight)
        else:
            value = result.metrics.get("fitness")
    else:
        value = metric_values(result.task, result.metrics)[METRIC_KEYS[metric]]
    return None if value is None else float(value)


def _move_aside(path: Path, log: Callable[[str], None]) -> None:
    """A directory in the way (a trial number reused after its study was deleted) is renamed, never overwritten."""
    if os.path.lexists(path):
        log(f"tune: {path} already existed (not from this study's trial); moved it to {move_aside(path)}")


def _error_record(error: BaseException) -> str:
    """How a failed trial's error is recorded: its type, and the first line of its message."""
    name = type(error).__name__
    return f"{name}: {error_line(error)}" if str(error).strip() else name


def _objective(plan: TunePlan, callbacks: Callbacks, log: Callable[[str], None]) -> Callable:
    """The Optuna objective: draw a trial's values, train the base run with them, return the trial's value.

    ``callbacks`` (ultralytics events -> a function of the trainer or a list of them) are added to every trial's
    training after the tuner's own. A trial whose training raises is recorded and raises :class:`TrialFailed`;
    Ctrl-C is recorded as ``interrupted`` and goes up, and so does a write the disk refused.
    """
    metric = plan.settings.metric
    extra = callback_lists(callbacks)

    def objective(trial: optuna.trial.Trial) -> float:
        drawn = plan.space.suggest(trial, plan.base_config.overrides, plan.epochs)
        record_process(trial)
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
        reporter = _EpochReporter(trial, metric, plan.base_config.task)
        events = {**extra, "on_fit_epoch_end": [reporter.on_fit_epoch_end, *extra.get("on_fit_epoch_end", [])]}
        try:
            # the base run's project is the trials directory; a restart the schedule drops is logged by the trainer
            config = plan.base_config.with_settings({**drawn.hyp, "name": run_dir.name, "exist_ok": False},
                                                    source=f"trial {trial.number}")
            result = train(config, callbacks=events)
        except (TrainingInterrupted, KeyboardInterrupt):
            trial.set_user_attr(ERROR_ATTR, "interrupted")
            raise
        except Exception as error:  # one trial's failure is recorded and the study goes on
            if is_disk_fault(error):  # unless the next trial would meet it too: the study stops (the trial FAIL)
                raise
            log("".join(traceback.format_exception(error)).rstrip())
            trial.set_user_attr(ERROR_ATTR, _error_record(error))
            raise TrialFailed(_error_record(error)) from error
        if reporter.pruned_at is not None:
            raise optuna.TrialPruned(f"after epoch {reporter.pruned_at}: behind the median of earlier trials")
        value = _final_value(result, metric, config.overrides.get("fitness_map50_weight", 0.0))
        if value is None or not math.isfinite(value):
            trial.set_user_attr(ERROR_ATTR, f"no finite {metric} after training ({value})")
            raise TrialFailed(f"no finite {metric} after training ({value})")
        return value

    return objective


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


def tune(callbacks: Callbacks | None = None, log: Callable[[str], None] = print,
         preset: str | None = None, **flags: Any) -> TuneResult:
    """Plan, then run trials until the study holds ``trials`` finished ones, then write the outputs.

    ``callbacks`` (ultralytics events -> a function of the trainer, or a list of them) are added to every trial's
    training.

    Raises:
        InputError (HypError, InputFileNotFoundError included): bad input, before anything is created or trained.
        TuneInterrupted: Ctrl-C; the outputs of the finished trials are written first.
        OSError: a write the disk refused (no space, read-only, ...); the trial in progress ends FAIL and a rerun
            continues the study.
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
        for trial in fail_dead_trials(study):
            log(f"tune: trial {trial.number} was running in {describe_process(trial)}, which is gone: marked failed "
                "(it does not count)")
        counts = trial_counts(study)
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if finished >= settings.trials:
            log(f"tune: the study already has {finished} finished trials (--trials {settings.trials}); raise --trials "
                "to run more")
        elif finished + counts[TrialState.RUNNING] >= settings.trials:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            log(f"tune: the {settings.trials - finished} trial(s) to go are running elsewhere ("
                + ", ".join(f"trial {t.number} in {describe_process(t)}" for t in running) + "): nothing to start; "
                "rerun the same command once they end. One whose process died on another host stays running until "
                f"{HEARTBEAT_GRACE_S} s after its last heartbeat, then a rerun marks it failed and runs another")
        else:
            stop_at_total = optuna.study.MaxTrialsCallback(settings.trials, states=(*COUNTED_STATES, TrialState.RUNNING))
            study.optimize(_objective(plan, callbacks or {}, log), catch=(TrialFailed,), gc_after_trial=True,
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
