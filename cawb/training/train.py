"""YOLOv5-style training with CAWB: the library behind ``train_cawb.py``.

Settings come from three places, later ones winning: the defaults (the article's setup when ``--data`` is given,
the embedded offline demo when it is not), the hyp YAML file, and the command line / keyword arguments.
Everything is checked before any training starts: the hyp file, the flags, the schedule for the final epoch count,
the dataset yaml and the model files. Nothing is ever downloaded: models are built from their yaml and a
``--weights`` file must exist locally.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from cawb.hyp import CAWB_HYP_KEYS, HypError, hyp_for_model, kind_defaults, load_hyp, schedule_from_hyp, validate_hyp
from cawb.utils.resources import bundled_data, bundled_hyp, resolve_data, resolve_hyp
from cawb.yolov5.kind import model_kind
from cawb.yolov5.sources import BUNDLED_MODELS, ModelYamlError, is_v5_yaml, load_model_yaml, resolve_model_yaml

__all__ = [
    "ARTICLE_DEFAULTS",
    "EMBEDDED_DEFAULTS",
    "TrainResult",
    "TrainingInterrupted",
    "check_run_dir_reuse",
    "checkpoint_finished",
    "plan_run",
    "resume_directory",
    "train",
]

#: Defaults when ``--data`` is given: the seed article's setup (YOLOv5s of release v5.0 from scratch, 640 px, batch 16,
#: the CAWB arm's hyp).
ARTICLE_DEFAULTS: dict[str, Any] = {
    "cfg": "yolov5s-v5.0.yaml",
    "hyp": bundled_hyp("hyp.scratch-cawb.yaml"),
    "imgsz": 640,
    "batch": 16,
    "workers": 8,
    "project": "runs/train",
    "name": "exp",
    "seed": 0,
}

#: Defaults with no ``--data``: an offline demo on the generated shapes dataset, on the CPU, in a few minutes. It trains
#: ultralytics' yolov5n: v5.0's network at nano size (``--cfg yolov5n-v5.0.yaml``) barely starts learning in these 320
#: iterations (mAP50 ~0.06 against ~0.9, docs/RESULTS.md), its loss gains being scaled down for 128 px.
EMBEDDED_DEFAULTS: dict[str, Any] = {
    "data": bundled_data("shapes.yaml"),
    "cfg": "yolov5n.yaml",
    "hyp": bundled_hyp("hyp.shapes-cawb.yaml"),
    "imgsz": 128,
    "batch": 16,
    "device": "cpu",
    "workers": 0,
    "project": "runs/train",
    "name": "shapes",
    "seed": 0,
}

# Options that are not ultralytics keys: how the run is assembled rather than how it trains.
_RUN_OPTIONS = ("data", "cfg", "weights", "hyp", "resume", "scheduler")
# ultralytics keys that would take the run over from a hyp file ('cfg' there replaces every setting).
_NOT_HYP_KEYS = frozenset({"cfg", "data", "model", "mode", "task", "resume"})


class TrainingInterrupted(Exception):
    """Training stopped by Ctrl-C; ``last`` is the checkpoint to resume from (None if no epoch finished)."""

    def __init__(self, last: Path | None):
        super().__init__(f"interrupted; resume from {last}" if last else "interrupted before the first checkpoint")
        self.last = last


@dataclasses.dataclass
class TrainResult:
    """What a finished run left: its directory, final weights and final validation mAPs (ultralytics' validator)."""

    save_dir: Path
    weights: Path
    map50: float | None
    map50_95: float | None
    metrics: dict[str, float]
    #: what the plan said before training (where a resume continues, restarts of the hyp file left out, ...)
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunPlan:
    """A fully checked run: the model to build and ultralytics' train() keyword arguments."""

    model_source: str
    weights: Path | None
    overrides: dict[str, Any]
    resume: Path | None = None
    #: things the user should know before training (logged as warnings at the start, repeated in the summary)
    notes: list[str] = dataclasses.field(default_factory=list)


def _check_positive_int(options: dict[str, Any], key: str, minimum: int, what: str) -> None:
    if key in options:
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise HypError(f"--{key.replace('_', '-')} {value!r} is invalid: it must be {what}")


def plan_run(**options: Any) -> RunPlan:
    """Merge defaults < hyp file < options and check everything a run needs, without training.

    Keyword options: the ``train_cawb.py`` flags by their destination names (``data``, ``cfg``, ``weights``,
    ``hyp``, ``epochs``, ``batch``, ``imgsz``, ``device``, ``workers``, ``seed``, ``project``, ``name``,
    ``exist_ok``, ``resume``, ``scheduler``, ``cawb_*``) and any ultralytics training key.

    Raises:
        HypError, ValueError, FileNotFoundError: one-line messages, before anything is built or trained.
    """
    from cawb.datasets.resolve import resolve_dataset_yaml

    if options.get("resume"):
        return _plan_resume(options)

    cawb_flags = [key for key in options if key in CAWB_HYP_KEYS and key != "cawb"]
    scheduler = options.pop("scheduler", None)
    if scheduler == "cos" and cawb_flags:
        raise HypError(f"--scheduler cos contradicts {', '.join('--' + k.replace('_', '-') for k in cawb_flags)}")
    if scheduler is not None:
        options["cawb"] = scheduler == "cawb"
    elif cawb_flags:
        options["cawb"] = True

    defaults = dict(EMBEDDED_DEFAULTS if options.get("data") is None else ARTICLE_DEFAULTS)
    hyp_path = resolve_hyp(options.pop("hyp", None) or defaults["hyp"])
    hyp = load_hyp(hyp_path)
    misplaced = sorted(set(hyp) & _NOT_HYP_KEYS)
    if misplaced:
        raise HypError(f"{hyp_path}: {', '.join(misplaced)} cannot be set in a hyp file (give data and model as "
                       "--data, --cfg, --weights)")

    run_keys = {key: options.pop(key) for key in list(options) if key in _RUN_OPTIONS}
    given = validate_hyp(options, source="command line")
    _check_positive_int(given, "epochs", 1, "an integer >= 1")
    _check_positive_int(given, "imgsz", 32, "an integer >= 32 (pixels)")
    _check_positive_int(given, "workers", 0, "an integer >= 0")
    if "batch" in given and not (given["batch"] == -1 or 0 < given["batch"] < 1 or
                                 (isinstance(given["batch"], int) and given["batch"] >= 1)):
        raise HypError(f"--batch-size {given['batch']!r} is invalid: it must be an integer >= 1, -1 (auto) or a "
                       "fraction of GPU memory in (0, 1)")

    # --weights alone is the model (as in YOLOv5); --cfg with --weights builds the yaml and loads what matches.
    cfg = run_keys.get("cfg") or (None if run_keys.get("weights") else defaults["cfg"])
    model_source, weights = _check_model_files(cfg, run_keys.get("weights"))
    # The loss keys mean what they mean for this kind of model (v5.0's or ultralytics'); unset ones take its defaults.
    kind = model_kind(model_source)
    hyp = hyp_for_model(hyp, kind, source=str(hyp_path))
    given = hyp_for_model(given, kind, source="command line")

    settings = {**{k: v for k, v in defaults.items() if k not in _RUN_OPTIONS}, **kind_defaults(kind), **hyp, **given}
    # ultralytics puts a relative project under its own runs dir (runs/detect/<project>); ours is the working dir's.
    if isinstance(settings.get("project"), str):
        settings["project"] = str(Path(settings["project"]).expanduser().absolute())
    if settings.get("optimizer", "auto") == "auto":
        from ultralytics.utils import LOGGER

        LOGGER.warning("optimizer=auto ignores lr0 and picks its own optimizer and lr: set optimizer: SGD to train "
                       "with the hyp file's learning rates")
    schedule_from_hyp(settings, source=f"{hyp_path} + command line")  # the schedule for the final epoch count

    dataset = resolve_dataset_yaml(resolve_data(run_keys.get("data") or defaults["data"]))
    overrides = {**settings, "data": str(dataset.yaml)}
    return RunPlan(model_source=model_source, weights=weights, overrides=overrides)


def _plan_resume(options: dict[str, Any]) -> RunPlan:
    resume = options["resume"]
    allowed = {"device", "batch", "workers", "imgsz", "resume", "project"}
    ignored = sorted(set(options) - allowed)
    if ignored:
        raise HypError(f"--resume continues the run with its own settings; it only takes --device, --batch-size, "
                       f"--workers and --imgsz, not {', '.join(ignored)}")
    if resume is True:
        from ultralytics.utils.files import get_latest_run

        latest = get_latest_run(str(Path(options.get("project") or "runs")))
        if not latest:
            raise FileNotFoundError("--resume: no last.pt found under runs/; pass the checkpoint path")
        resume = latest
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"--resume {path}: no such checkpoint")
    checkpoint = _read_checkpoint(path)
    if checkpoint is None:
        raise ValueError(f"--resume {path}: not a readable ultralytics checkpoint")
    if _is_finished(checkpoint):
        raise ValueError(f"--resume {path}: this run already finished; start a new run to train further")
    save_dir, notes = resume_directory(path, checkpoint)
    overrides = {key: options[key] for key in ("device", "batch", "workers", "imgsz") if key in options}
    return RunPlan(model_source=str(path), weights=None, overrides={**overrides, "save_dir": str(save_dir)},
                   resume=path, notes=notes)


#: What a run directory holds once training has written to it: a resume must not write over another state of it.
_RUN_STATE = ("weights/last.pt", "weights/best.pt", "results.csv")


def resume_directory(path: Path, checkpoint: dict[str, Any]) -> tuple[Path, list[str]]:
    """Where resuming the checkpoint ``path`` may write, and what to tell the user about it.

    ultralytics resumes into the run directory the checkpoint records (its ``train_args['save_dir']``), whatever
    has happened there since: a copy of an interrupted ``last.pt`` resumed after the original run finished would
    overwrite that run's weights and add epochs to its ``results.csv``. Here:

    * a checkpoint that is a run directory's ``weights/last.pt`` continues in that directory, where it is now (a
      moved or copied run directory continues where it is, not where it was made);
    * any other checkpoint (a loose copy, ``weights/epoch3.pt``, ``best.pt``) continues in the directory it
      belongs to (its run directory, else the recorded one) only if that holds no training state
      (:data:`_RUN_STATE`); otherwise in a new directory beside it, numbered as ultralytics numbers runs
      (``exp-2``), and the note says so.

    Raises:
        ValueError: the directory cannot be told or cannot be written (one line).
    """
    from ultralytics.utils.files import increment_path

    from cawb.utils.user_files import UserFileError, check_output_dir

    recorded_text = (checkpoint.get("train_args") or {}).get("save_dir")
    recorded = Path(recorded_text) if recorded_text else None
    own = path.parent.parent if path.parent.name == "weights" else None
    home = own or recorded
    if home is None:
        raise ValueError(f"--resume {path}: the checkpoint does not record its run directory; copy it to "
                         "<a new directory>/weights/last.pt and resume that")
    notes = []
    is_own_last = own is not None and path.name == "last.pt"
    state = [name for name in _RUN_STATE if (home / name).exists() and not (home / name).samefile(path)]
    if is_own_last or not state:
        save_dir = home
        if recorded is not None and save_dir.absolute() != recorded.absolute():
            notes.append(f"--resume {path}: continuing in {save_dir}, where the checkpoint is (the run was started "
                         f"in {recorded}, which is not touched)")
    else:
        save_dir = increment_path(home)
        notes.append(f"--resume {path}: {home} holds another state of this run ({', '.join(state)}), which a resume "
                     f"would overwrite; continuing in a new directory {save_dir} ({home} is not touched)")
    try:
        check_output_dir(save_dir, f"--resume {path}: run directory")
    except UserFileError as error:
        raise ValueError(str(error)) from None
    return save_dir, notes


def check_run_dir_reuse(overrides: dict[str, Any]) -> None:
    """Refuse ``exist_ok`` on a ``project/name`` that holds a run: ultralytics would train into it, deleting its
    ``results.csv`` and overwriting its weights. (Without ``exist_ok`` ultralytics picks a new name, ``exp-2``.)

    Raises:
        ValueError: one line naming the directory and what it holds.
    """
    if not overrides.get("exist_ok") or not overrides.get("project") or not overrides.get("name"):
        return
    run_dir = Path(overrides["project"]) / str(overrides["name"])
    weights = run_dir / "weights"
    held = [name for name in _RUN_STATE if (run_dir / name).exists()]
    held += sorted(f"weights/{p.name}" for p in weights.glob("*.pt") if f"weights/{p.name}" not in held) \
        if weights.is_dir() else []
    if held:
        raise ValueError(f"--exist-ok: {run_dir} holds a run ({', '.join(held[:4])}), which training there would "
                         "overwrite (ultralytics deletes its results.csv): give another --name, leave out --exist-ok "
                         "to get a new numbered directory, or move it away")


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    """An ultralytics checkpoint as torch loads it, or None when it is unreadable or not a checkpoint dict."""
    from ultralytics.utils.patches import torch_load

    try:
        checkpoint = torch_load(path, map_location="cpu")
    except Exception:  # a truncated or foreign file: whatever unpickling raises, it cannot be resumed
        return None
    return checkpoint if isinstance(checkpoint, dict) else None


def _is_finished(checkpoint: dict[str, Any]) -> bool:
    # ultralytics strips a run's checkpoints when it ends: epoch -1 and no optimizer
    return checkpoint.get("epoch", -1) < 0 or checkpoint.get("optimizer") is None


def checkpoint_finished(path: Path) -> bool | None:
    """Whether an ultralytics ``last.pt`` is a finished run's (True: ultralytics strips it at the end, epoch -1 and
    no optimizer), an interrupted run's (False: resumable), or unreadable / not a checkpoint (None)."""
    checkpoint = _read_checkpoint(path)
    return None if checkpoint is None else _is_finished(checkpoint)


def _check_model_files(cfg: str | None, weights: str | None) -> tuple[str, Path | None]:
    """The model yaml to build (a YOLOv5 v5.0 yaml by name or path, or one ultralytics resolves) and the local weights
    file, or a clear error."""
    weights_path = None
    if weights:
        weights_path = Path(weights)
        if weights_path.suffix != ".pt" or not weights_path.is_file():
            raise FileNotFoundError(f"--weights {weights}: no such .pt file (cawb never downloads weights)")
    if cfg:
        local = resolve_model_yaml(cfg)
        if local is not None and str(cfg).lower().endswith((".yaml", ".yml")):
            try:
                if is_v5_yaml(load_model_yaml(local)):
                    from cawb.yolov5.model import build_model

                    build_model(local)  # a malformed layer fails here, before any data is touched
                    return str(local), weights_path
            except ModelYamlError as error:
                raise ModelYamlError(f"--cfg {cfg}: {error}") from None
        from ultralytics.nn.tasks import yaml_model_load

        try:
            yaml_model_load(cfg)  # as ultralytics resolves it: yolov5s.yaml is yolov5.yaml at scale 's'
        except FileNotFoundError as error:
            raise FileNotFoundError(f"--cfg {cfg}: model yaml not found (e.g. {', '.join(BUNDLED_MODELS[:2])}, "
                                    "ultralytics' yolov5n.yaml, yolov5s.yaml, or a path)") from error
        return cfg, weights_path
    if weights_path is None:
        raise ValueError("give --cfg (a model yaml) or --weights (a .pt file)")
    return str(weights_path), None


def train(callbacks: dict[str, Callable] | None = None, **options: Any) -> TrainResult:
    """Train as ``train_cawb.py`` does; keyword options as in :func:`plan_run`. Returns where the results are.

    ``callbacks`` maps ultralytics callback events (e.g. ``"on_fit_epoch_end"``) to functions of the trainer.

    Raises:
        HypError, ValueError, FileNotFoundError: bad input, before training.
        TrainingInterrupted: Ctrl-C during training (its ``last`` is the checkpoint to resume from).
    """
    plan = plan_run(**options)
    if plan.resume is None:
        check_run_dir_reuse(plan.overrides)
    from ultralytics.utils import LOGGER

    from cawb.training.model import YOLO  # ultralytics' YOLO that also builds the v5.0 yamls
    from cawb.training.trainer import CawbDetectionTrainer

    for note in plan.notes:
        LOGGER.warning(note)

    model = YOLO(plan.model_source)
    for event, function in (callbacks or {}).items():
        model.add_callback(event, function)
    if plan.weights is not None:
        model.load(plan.weights)
    resume = {"resume": True} if plan.resume is not None else {}
    try:
        model.train(trainer=CawbDetectionTrainer, **resume, **plan.overrides)
    except KeyboardInterrupt:
        trainer = getattr(model, "trainer", None)
        last = getattr(trainer, "last", None)
        raise TrainingInterrupted(Path(last) if last is not None and Path(last).is_file() else None) from None
    trainer = model.trainer
    metrics = model.metrics
    metrics = dict(getattr(metrics, "results_dict", metrics) or {})
    weights = trainer.best if trainer.best.exists() else trainer.last
    return TrainResult(
        save_dir=Path(trainer.save_dir),
        weights=Path(weights),
        map50=metrics.get("metrics/mAP50(B)"),
        map50_95=metrics.get("metrics/mAP50-95(B)"),
        metrics=metrics,
        notes=list(plan.notes),
    )
