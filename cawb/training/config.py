"""One training run's settings, merged and checked once: :class:`RunConfig` and :func:`plan_run`.

Settings come from three places, later ones winning: the defaults (the article's setup when ``data`` is given, the
embedded offline demo of the model's task when it is not), the hyp YAML file, and the options (``train_cawb.py``'s
flags, ``key=value`` settings, keyword arguments). :func:`plan_run` checks all of it before anything is built or
trained and returns a frozen :class:`RunConfig`; :func:`cawb.training.train.train`, the comparison runner, the tuner
and the trainer take that object and check nothing again. Nothing is ever downloaded: models are built from their
yaml and a ``weights`` file must exist locally.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from cawb.schedule import CawbSchedule, restart_rule
from cawb.training.checkpoints import (
    check_run_dir_reuse,
    is_finished,
    load_ultralytics_checkpoint,
    resume_directory,
)
from cawb.training.hyp import CAWB_HYP_KEYS, HypFile, read_hyp_file, schedule_from_hyp, validate_hyp
from cawb.training.tasks import (
    check_class_folder,
    check_task_fits_data,
    checkpoint_task,
    demo_data,
    model_task,
    trainer_data,
)
from cawb.utils.checks import is_int
from cawb.utils.errors import HypError, InputError, InputFileNotFoundError
from cawb.utils.resources import bundled_hyp, resolve_data, resolve_hyp
from cawb.yolov5.kind import model_kind
from cawb.yolov5.recipe import RECIPE_KEYS, hyp_for_model, kind_defaults
from cawb.yolov5.sources import BUNDLED_MODELS, KIND_ULTRALYTICS, ModelYamlError, is_v5_yaml, resolve_model_yaml

__all__ = ["ARTICLE_DEFAULTS", "DEFAULT_PROJECT", "EMBEDDED_DEFAULTS", "RUNNER_KEYS", "RunConfig", "plan_resume",
           "plan_run"]

#: Defaults when ``data`` is given: the seed article's setup (YOLOv5s of release v5.0 from scratch, 640 px, batch 16,
#: the CAWB arm's hyp).
ARTICLE_DEFAULTS: dict[str, Any] = {
    "cfg": "yolov5s-v5.0.yaml",
    "hyp": bundled_hyp("hyp.scratch-cawb.yaml"),
    "imgsz": 640,
    "batch": 16,
    "workers": 8,
    "name": "exp",
    "seed": 0,
}

#: Defaults with no ``data``: an offline demo on the generated shapes dataset, on the CPU, in a few minutes. It trains
#: ultralytics' yolov5n: v5.0's network at nano size (``cfg: yolov5n-v5.0.yaml``) barely starts learning in these
#: iterations, its loss gains being scaled down for 128 px (docs/RESULTS.md). A model of another task (``cfg:
#: yolo11n-seg.yaml``) trains on that task's shapes data instead (:func:`cawb.training.tasks.demo_data`), in a run
#: named after it (``shapes-seg``).
EMBEDDED_DEFAULTS: dict[str, Any] = {
    "data": demo_data("detect"),
    "cfg": "yolov5n.yaml",
    "hyp": bundled_hyp("hyp.shapes-cawb.yaml"),
    "imgsz": 128,
    "batch": 16,
    "device": "cpu",
    "workers": 0,
    "name": "shapes",
    "seed": 0,
}

#: Where runs go without a project: this folder of ultralytics' ``runs_dir`` setting (YOLOv5's runs/train/exp layout
#: under the place ultralytics users chose for their runs).
DEFAULT_PROJECT = "train"

# Options that are not ultralytics keys: how the run is assembled rather than how it trains.
_RUN_OPTIONS = ("data", "cfg", "weights", "hyp", "resume", "scheduler")
# ultralytics keys that would take the run over from a hyp file ('cfg' there replaces every setting).
_NOT_HYP_KEYS = frozenset({"cfg", "data", "model", "mode", "task", "resume"})
# ultralytics keys that would take the run over as key=value, with what to give instead.
_NOT_OPTION_KEYS = {
    "model": "it would silently replace --cfg; give the model yaml as --cfg, or weights as --weights",
    "mode": "train_cawb.py trains (mode=train)",
    "task": "the task is the model's (--cfg yolo11n-seg.yaml trains segmentation)",
}
#: Settings a runner of many runs (the comparison, the tuner) sets itself, per run or for all: not accepted from
#: its ``key=value`` settings, where they would break its plan (``time`` replaces the epochs every run shares).
RUNNER_KEYS = frozenset({"data", "cfg", "model", "hyp", "epochs", "batch", "imgsz", "device", "workers", "seed",
                         "project", "name", "exist_ok", "resume", "mode", "task", "save_dir", "time"})
# The options a resume takes: the rest comes from the checkpoint.
_RESUME_OPTIONS = ("device", "batch", "workers", "imgsz")
# Keys the schedule depends on: changing one rebuilds it (RunConfig.with_settings).
_SCHEDULE_KEYS = frozenset({*CAWB_HYP_KEYS, "epochs", "warmup_epochs"})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of one training run, resolved and checked (:func:`plan_run`, :func:`plan_resume`).

    Attributes:
        model_source: the model yaml (a bundled v5.0 name, an ultralytics name or a path) or checkpoint to build.
        weights: local weights loaded into it, or None.
        overrides: ultralytics' ``train()`` keywords: every setting (defaults < hyp file < options, the model
            kind's recipe for what is unset), ``data``, ``project`` (absolute) and ``name``. Treat as read-only.
        kind: ``"v5.0"`` or ``"ultralytics"``: what the loss keys mean.
        task: the model's ultralytics task (``detect``, ``segment``, ``pose``, ``obb``, ``classify``): which trainer
            trains it (:data:`cawb.training.trainer.TASK_TRAINERS`) and which metrics judge it.
        schedule: the CAWB schedule for the final epoch count, or None for ultralytics' own cos/linear one.
        resume: the checkpoint a resumed run continues (its settings are the checkpoint's), else None.
        notes: what the user should know before training (logged at the start, repeated in the summary).
    """

    model_source: str
    weights: Path | None
    overrides: dict[str, Any]
    kind: str = KIND_ULTRALYTICS
    task: str = "detect"
    schedule: CawbSchedule | None = None
    resume: Path | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def with_settings(self, changes: Mapping[str, Any], source: str = "settings") -> RunConfig:
        """A copy with some settings changed, without planning again: the run's seed, name, project or device, a
        tuner trial's drawn values. Each new value is checked as :func:`plan_run` checks options; the schedule is
        rebuilt only when a key it depends on changes.

        Raises:
            HypError: a bad key or value, named with ``source``.
        """
        if self.resume is not None:
            raise InputError("a resumed run takes its settings from its checkpoint")
        given = hyp_for_model(validate_hyp(changes, source=source), self.kind, source=source)
        overrides = {**self.overrides, **given}
        schedule = self.schedule
        if _SCHEDULE_KEYS & set(given):
            schedule = schedule_from_hyp(overrides, source=source)
        return dataclasses.replace(self, overrides=overrides, schedule=schedule)


def _check_flag_int(options: Mapping[str, Any], key: str, minimum: int, what: str) -> None:
    if key in options and not is_int(options[key], minimum):
        raise HypError(f"--{key.replace('_', '-')} {options[key]!r} is invalid: it must be {what}")


def _scheduler_choice(options: dict[str, Any]) -> None:
    """``scheduler`` (cos/cawb) and ``cawb_*`` options become the ``cawb`` setting; contradictions are refused."""
    cawb_flags = [key for key in options if key in CAWB_HYP_KEYS and key != "cawb"]
    scheduler = options.pop("scheduler", None)
    if scheduler == "cos" and cawb_flags:
        raise HypError(f"--scheduler cos contradicts {', '.join('--' + k.replace('_', '-') for k in cawb_flags)}")
    if scheduler is not None:
        options["cawb"] = scheduler == "cawb"
    elif cawb_flags:
        options["cawb"] = True


def plan_run(*, refuse_restarts_outside: bool = True, resolve_dataset: bool = True, **options: Any) -> RunConfig:
    """Merge defaults < hyp file < options and check everything a run needs, without training.

    Keyword options: the ``train_cawb.py`` flags by their destination names (``data``, ``cfg``, ``weights``,
    ``hyp``, ``epochs``, ``batch``, ``imgsz``, ``device``, ``workers``, ``seed``, ``project``, ``name``,
    ``exist_ok``, ``resume``, ``scheduler``, ``cawb_*``) and any ultralytics training key. ``hyp`` may be a path, a
    bundled short name or a :class:`~cawb.training.hyp.HypFile` already read.

    The checks, in order, all before the dataset (which may be generated) and the model are built: the hyp file
    and every value in it and in the options (keys, CAWB and recipe values, ultralytics' own type and range rules);
    ``model``, ``mode``, ``task`` refused as options; the output place (``project``); the device; the model files
    (``cfg`` read and built, ``weights`` loaded); the model's task against the dataset's
    (:func:`cawb.training.tasks.check_task_fits_data`; with no ``data``, the task's offline shapes data); with
    ``exist_ok``, a ``project/name`` that holds a run; the loss keys for that kind of model; the schedule for the
    final epoch count, a custom ``cawb_lf`` tried at every epoch. Restarts of the options (``cawb_steps`` given as a
    flag or keyword) that fall outside the run are refused unless ``refuse_restarts_outside`` is False (compare's
    restarts scaled from a hyp file); restarts that come from the hyp file and fall outside (a shorter ``epochs``) are
    named in :attr:`RunConfig.notes`. Last, the dataset
    yaml is resolved (the demo dataset generated when missing), unless ``resolve_dataset`` is False (a caller
    planning several runs first checks them all): then ``overrides['data']`` is the dataset yaml as found.

    Raises:
        InputError (HypError, InputFileNotFoundError included): one line, before anything is built or trained.
    """
    from cawb.datasets.resolve import resolve_dataset_yaml
    from cawb.training.ultralytics_settings import check_device

    if options.get("resume"):
        return plan_resume(options.pop("resume"), **options)
    _scheduler_choice(options)
    defaults = dict(EMBEDDED_DEFAULTS if options.get("data") is None else ARTICLE_DEFAULTS)
    hyp_file = _hyp_file(options.pop("hyp", None) or defaults["hyp"])
    hyp = dict(hyp_file.settings)
    misplaced = sorted(set(hyp) & _NOT_HYP_KEYS)
    if misplaced:
        raise HypError(f"{hyp_file.path}: {', '.join(misplaced)} cannot be set in a hyp file (give data and model as "
                       "--data, --cfg, --weights)")

    run_keys = {key: options.pop(key) for key in list(options) if key in _RUN_OPTIONS}
    taken = sorted(set(options) & set(_NOT_OPTION_KEYS))
    if taken:
        raise HypError(f"{taken[0]}={options[taken[0]]!r} cannot be given as key=value: "
                       f"{_NOT_OPTION_KEYS[taken[0]]}")
    _check_flag_int(options, "epochs", 1, "an integer >= 1")
    _check_flag_int(options, "imgsz", 32, "an integer >= 32 (pixels)")
    _check_flag_int(options, "workers", 0, "an integer >= 0")
    if "batch" in options and not (options["batch"] == -1 or 0 < options["batch"] < 1 or is_int(options["batch"], 1)):
        raise HypError(f"--batch-size {options['batch']!r} is invalid: it must be an integer >= 1, -1 (auto) or a "
                       "fraction of GPU memory in (0, 1)")
    given = validate_hyp(options, source="command line")

    for key in ("project", "name"):  # empty (project=): the default, not a directory named None
        for source in (hyp, given):
            if key in source and source[key] is None:
                del source[key]
    base = {k: v for k, v in defaults.items() if k not in _RUN_OPTIONS}
    merged = {**base, **hyp, **given}
    # ultralytics puts a relative project under its own runs dir (runs/detect/<project>); ours is the working dir's,
    # as in YOLOv5. Without one, runs go where ultralytics' users keep theirs: its runs_dir setting.
    if "project" in merged:
        project = Path(str(merged["project"])).expanduser()
        flag = f"{hyp_file.path}: project" if "project" in hyp and "project" not in given else "--project"
    else:
        from cawb.utils.ultralytics_compat import runs_dir

        project, flag = runs_dir() / DEFAULT_PROJECT, "ultralytics' runs_dir setting (yolo settings runs_dir=...)"
    _check_output_place(project, flag)
    project = project.absolute()
    check_device(merged.get("device"))  # a GPU this machine lacks: now, not once the data is loaded

    # --weights alone is the model (as in YOLOv5); --cfg with --weights builds the yaml and loads what matches.
    cfg = run_keys.get("cfg") or (None if run_keys.get("weights") else defaults["cfg"])
    model_source, weights = _check_model_files(cfg, run_keys.get("weights"))
    model_flag = f"--cfg {cfg}" if cfg else f"--weights {run_keys['weights']}"
    task = model_task(model_source, model_flag.split()[0])
    data = resolve_data(run_keys.get("data") or demo_data(task))
    if run_keys.get("data"):
        check_task_fits_data(task, model_flag, data, f"--data {run_keys['data']}")
        if task == "classify" and data.is_dir():
            check_class_folder(data, f"--data {run_keys['data']}")
    elif "name" not in hyp and "name" not in given:  # the demo's run is named after its data: shapes-seg, ...
        base["name"] = merged["name"] = data.stem
    if merged.get("exist_ok"):
        check_run_dir_reuse(project / str(merged["name"]))
    # The loss keys mean what they mean for this kind of model (v5.0's or ultralytics'); unset ones take its defaults.
    kind = model_kind(model_source)
    hyp = hyp_for_model(hyp, kind, source=str(hyp_file.path))
    given = hyp_for_model(given, kind, source="command line")

    settings = {**base, **kind_defaults(kind), **hyp, **given, "project": str(project)}
    if task != "detect":
        _drop_detection_recipe(settings, task)
    if settings.get("optimizer", "auto") == "auto":
        from ultralytics.utils import LOGGER

        LOGGER.warning("optimizer=auto ignores lr0 and picks its own optimizer and lr: set optimizer: SGD to train "
                       "with the hyp file's learning rates")
    # the schedule for the final epoch count (a custom cawb_lf is tried at every epoch of it)
    schedule = schedule_from_hyp(settings, source=f"{hyp_file.path} + command line")
    notes = _restarts_outside(schedule, hyp_file.path, "cawb_steps" in given and refuse_restarts_outside)

    if not resolve_dataset or (task == "classify" and data.is_dir()):  # a folder: ultralytics' classify layout
        settings["data"] = str(data.absolute())
    else:
        settings["data"] = trainer_data(task, resolve_dataset_yaml(data))
    return RunConfig(model_source=model_source, weights=weights, overrides=settings, kind=kind, task=task,
                     schedule=schedule, notes=notes)


def _drop_detection_recipe(settings: dict[str, Any], task: str) -> None:
    """Leave out, with one warning, the keys of YOLOv5 v5.0's recipe that only detection's trainer applies (all but
    ``warmup_min_iters``): another task's trainer would not read them."""
    from ultralytics.utils import LOGGER

    ignored = [key for key in RECIPE_KEYS if key != "warmup_min_iters" and key in settings]
    if ignored:
        LOGGER.warning(f"cawb: {', '.join(f'{key}={settings[key]!r}' for key in ignored)} ignored: YOLOv5 v5.0's "
                       f"recipe and pipeline apply to detection models; a {task} model trains with ultralytics' own")
        for key in ignored:
            del settings[key]


def _hyp_file(hyp: str | Path | HypFile) -> HypFile:
    if isinstance(hyp, HypFile):
        return hyp
    path = resolve_hyp(hyp)
    if path.is_dir():
        raise HypError(f"--hyp {path}: is a directory, not a hyp file")
    return read_hyp_file(path)


def _check_output_place(path: Path, flag: str) -> None:
    from cawb.utils.user_files import UserFileError, check_output_dir

    try:
        check_output_dir(path, flag)
    except UserFileError as error:
        raise HypError(str(error)) from None


def _restarts_outside(schedule: CawbSchedule | None, hyp_path: Path, given: bool) -> list[str]:
    """Restart epochs the run would not make (:func:`cawb.schedule.restart_is_made`): refused when they were given
    explicitly (``given``), else a note naming the hyp file they come from."""
    if schedule is None or not schedule.dropped_restart_epochs:
        return []
    dropped = ", ".join(f"{epoch:g}" for epoch in schedule.dropped_restart_epochs)
    where = (f"restart epoch(s) {dropped} fall outside this {schedule.epochs}-epoch run (only "
             f"{restart_rule(schedule.warmup_epochs, schedule.epochs)} count: a restart shows from the epoch after it)")
    if given:
        raise HypError(f"cawb_steps: {where}: give restarts inside the run")
    return [f"{hyp_path}: {where} and are ignored; the schedule has "
            + (f"restarts at {', '.join(f'{s:g}' for s in schedule.restart_epochs)}" if schedule.restart_epochs
               else "no restart")]


def plan_resume(resume: str | Path | bool, project: str | None = None, **options: Any) -> RunConfig:
    """The run that continues the checkpoint ``resume`` (True: the most recent ``last.pt`` under ``project`` or
    ultralytics' ``runs_dir``), where it may write without overwriting another state of its run. Only ``device``,
    ``batch``, ``workers`` and ``imgsz`` may be changed; every other setting is the checkpoint's.

    Raises:
        InputError: a missing, damaged or finished checkpoint, or another option given.
    """
    ignored = sorted(set(options) - set(_RESUME_OPTIONS))
    if ignored:
        raise HypError(f"--resume continues the run with its own settings; it only takes --device, --batch-size, "
                       f"--workers and --imgsz, not {', '.join(ignored)}")
    if resume is True:
        from ultralytics.utils.files import get_latest_run

        from cawb.utils.ultralytics_compat import runs_dir

        where = Path(project) if project else runs_dir()
        latest = get_latest_run(str(where))
        if not latest:
            raise InputFileNotFoundError(f"--resume: no last.pt found under {where}; pass the checkpoint path")
        resume = latest
    path = Path(resume)
    if not path.exists() and not path.is_symlink():
        raise InputFileNotFoundError(f"--resume {path}: no such checkpoint")
    checkpoint = load_ultralytics_checkpoint(path, "--resume")
    from cawb.training.durable import finish_interrupted

    if is_finished(checkpoint) and not finish_interrupted(path, checkpoint):
        raise InputError(f"--resume {path}: this run already finished; start a new run to train further")
    save_dir, notes = resume_directory(path, checkpoint)
    return RunConfig(model_source=str(path), weights=None, overrides={**options, "save_dir": str(save_dir)},
                     kind=model_kind(checkpoint.get("ema") or checkpoint.get("model")),
                     task=checkpoint_task(checkpoint, f"--resume {path}"), resume=path, notes=notes)


def _check_model_files(cfg: str | None, weights: str | None) -> tuple[str, Path | None]:
    """The model yaml to build (a YOLOv5 v5.0 yaml by name or path, or one ultralytics resolves) and the local weights
    file, or a one-line error. A model yaml given as a path is read and built (a layer with an unknown module fails
    here); weights are loaded (an ultralytics checkpoint or one of the YOLOv5 repository's, imported; not a
    state_dict or another file)."""
    weights_path = None
    if weights:
        weights_path = Path(weights)
        if not weights_path.exists() and not weights_path.is_symlink():
            raise InputFileNotFoundError(f"--weights {weights}: not found (cawb never downloads weights: give a .pt "
                                         "file on disk)")
        if weights_path.suffix != ".pt":
            raise InputError(f"--weights {weights}: expected a .pt file (an ultralytics checkpoint); a model yaml "
                             "goes to --cfg")
        from cawb.yolov5.checkpoint_import import import_yolov5_checkpoint, is_yolov5_checkpoint

        if is_yolov5_checkpoint(weights_path):  # the YOLOv5 repository's: imported now, so a misfit fails here
            import_yolov5_checkpoint(weights_path)
        else:
            load_ultralytics_checkpoint(weights_path, "--weights")
    if cfg:
        return _check_model_yaml(cfg), weights_path
    if weights_path is None:
        raise InputError("give --cfg (a model yaml) or --weights (a .pt file)")
    return str(weights_path), None


def _check_model_yaml(cfg: str) -> str:
    """What ``--cfg`` names, checked: a path is read and built; a bundled or ultralytics name is resolved."""
    from cawb.training.ultralytics_settings import ultralytics_defaults
    from cawb.utils.user_files import UserFileError, read_yaml

    path = Path(cfg)
    if path.suffix.lower() == ".pt":
        raise InputError(f"--cfg {cfg}: is weights, not a model yaml; give weights as --weights")
    if path.exists() or path.is_symlink():
        try:
            data = read_yaml(path, "--cfg", mapping_of="a model's layers (backbone, head)")
        except UserFileError as error:
            raise ModelYamlError(str(error)) from None
        if "backbone" not in data or "head" not in data:
            settings = set(data) & (set(ultralytics_defaults()) | set(CAWB_HYP_KEYS))
            hint = "; it holds training settings: give a hyp file as --hyp" if settings else ""
            raise ModelYamlError(f"--cfg {cfg}: not a model yaml (it has no backbone and head){hint}")
        try:
            if is_v5_yaml(data):
                from cawb.yolov5.model import build_model

                build_model(path)  # a malformed layer fails here, before any data is touched
            else:
                _build_ultralytics_model(path, data)
        except ModelYamlError as error:
            reason = str(error).removeprefix(f"{path}: ")  # the v5.0 builder names the file too
            raise ModelYamlError(f"--cfg {cfg}: {reason}") from None
        return str(path)
    local = resolve_model_yaml(cfg)  # a bundled v5.0 name
    if local is not None:
        return str(local)
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(cfg)  # as ultralytics resolves it: yolov5s.yaml is yolov5.yaml at scale 's'
    except (FileNotFoundError, AssertionError):  # AssertionError: ultralytics' check of the suffix
        raise InputFileNotFoundError(f"--cfg {cfg}: model yaml not found (e.g. {', '.join(BUNDLED_MODELS[:2])}, "
                                     "ultralytics' yolov5n.yaml, yolov5s.yaml, or a path)") from None
    return cfg


def _build_ultralytics_model(path: Path, data: Mapping[str, Any]) -> None:
    """Build an ultralytics model yaml (read as ``data``) once, as the model of its task, so that a bad layer (an
    unknown module, wrong arguments) is found now.

    Raises:
        ModelYamlError: one line with what ultralytics' builder raised.
    """
    from ultralytics.nn.tasks import guess_model_task

    from cawb.training.tasks import TASKS, ultralytics_model_class

    task = guess_model_task(dict(data))
    try:
        ultralytics_model_class(task if task in TASKS else "detect")(str(path), verbose=False)
    except Exception as error:  # whatever the builder raises on a bad layer
        reason = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, KeyError):
            reason = f"unknown module {reason} (not a module ultralytics builds)"
        raise ModelYamlError(f"cannot build a model from it: {reason}") from None
