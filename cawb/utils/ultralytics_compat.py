"""cawb's one point of contact with ultralytics' internals, for the range of ultralytics releases it supports.

cawb is a plugin: it runs on the ultralytics a user already has. Whatever it uses that ultralytics does not promise
to keep (private trainer hooks, module constants, the settings file, cached online flags, the AMP check) is reached
through this module, which finds out what the installed release offers by looking for the feature itself (a
method, a constant, a module), not by reading its version string, and gives the rest of cawb one surface:

* the range: :data:`OLDEST_SUPPORTED` up to :data:`NEWEST_TESTED` (docs/RESULTS.md lists the releases tried and
  why older ones are not supported); :func:`require_supported_ultralytics` refuses any other installation, or a
  newer one that lacks a hook cawb overrides or calls (:data:`HOOKS`), with one line that names
  the installed version, the range and the fix;
* settings: ultralytics' defaults (:func:`default_settings`), its type lists (:func:`setting_rules`) and the
  optimizer names its trainer builds (:func:`optimizer_names`, a fixed table: ultralytics keeps them in a local);
* the trainer: its stock per-epoch lr multiplier (:func:`stock_lr_factor`), its warmup length
  (:func:`stock_warmup_iterations`) and how the ramp ends (:func:`warmup_lands_on_target`, a fixed table), the
  class names set before loading weights (:func:`model_names_for_load`), the AMP check it runs
  (:func:`replaced_amp_check`) and how it writes checkpoints (:func:`durable_checkpoint_writes`);
* datasets: the image suffixes its loaders read (:func:`image_formats`) and Pillow's own ``Image.open``
  (:func:`pillow_image_open`);
* the process: :func:`cpu_threads` (the CPU thread count ultralytics resets torch to);
* where YOLOv5 v5.0 trained otherwise: the optimizer step with the clipping threshold as a setting
  (:func:`optimizer_step`), the per-epoch schedule lagged by one epoch (:func:`lag_epoch_schedule`), the training
  augmentation configured per dataset (:func:`configure_train_augmentation`), and what ultralytics fixes in its code
  (:data:`ULTRALYTICS_MAX_GRAD_NORM`, :data:`ULTRALYTICS_BOX_AR_THR`, the metric names :data:`MAP50_KEY` and
  :data:`MAP50_95_KEY`);
* its places: its ``datasets_dir`` and ``runs_dir`` settings (:func:`datasets_dir`, :func:`runs_dir`, read from its
  settings object at the time of use, so a change made in the same process counts) and the dataset yamls it ships
  (:func:`ultralytics_dataset_yaml`: ``coco8.yaml`` by name, as ``yolo train`` takes it);
* the network: :func:`keep_ultralytics_offline` (its offline variable and the online flags it caches).

Imports ultralytics only inside functions: ``import cawb`` and every ``--help`` stay free of it (and of torch).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Mapping

import yaml

from cawb.utils.errors import InputError

__all__ = [
    "AMP_CHECK_WEIGHTS",
    "MAP50_95_KEY",
    "MAP50_KEY",
    "NEWEST_TESTED",
    "OFFLINE_VARIABLE",
    "OLDEST_SUPPORTED",
    "PLUGIN_IMAGE_FORMATS",
    "HOOKS",
    "ULTRALYTICS_BOX_AR_THR",
    "ULTRALYTICS_MAX_GRAD_NORM",
    "UnsupportedUltralytics",
    "configure_train_augmentation",
    "cpu_threads",
    "datasets_dir",
    "default_settings",
    "durable_checkpoint_writes",
    "image_formats",
    "pillow_image_open",
    "installed_version",
    "is_ultralytics_dataset_yaml",
    "keep_ultralytics_offline",
    "lag_epoch_schedule",
    "model_names_for_load",
    "optimizer_names",
    "optimizer_step",
    "replaced_amp_check",
    "require_supported_ultralytics",
    "runs_dir",
    "settings_file",
    "setting_rules",
    "stock_lr_factor",
    "stock_warmup_iterations",
    "ultralytics_dataset_names",
    "ultralytics_dataset_yaml",
    "warmup_lands_on_target",
]

#: The oldest ultralytics release cawb's tests pass on (pyproject.toml's lower bound says the same).
OLDEST_SUPPORTED = "8.4.104"
#: The newest release tested. Not an upper bound: a newer one runs while it has every hook cawb uses (:data:`HOOKS`).
NEWEST_TESTED = "8.4.190"

# What cawb's parts override in the trainers of the other tasks (detection's also builds v5.0 models and loaders).
_TASK_TRAINER_HOOKS = ("_setup_scheduler", "_get_warmup_iterations", "final_eval", "get_dataloader", "get_validator",
                       "optimizer_step", "plot_metrics", "read_results_csv", "resume_training", "save_model", "train")
#: Methods of ultralytics' classes that cawb overrides or calls: its trainer parts (``DetectionTrainer`` and the
#: other tasks' trainers), the evaluation's validator, ``cawb.YOLO`` and the training augmentation it configures. A
#: release without one of them is refused at start (a missing private hook would otherwise be skipped silently or
#: fail mid-run).
HOOKS = {
    "DetectionTrainer": ("_setup_scheduler", "_get_warmup_iterations", "build_dataset", "final_eval",
                         "get_dataloader", "get_model", "get_validator", "optimizer_step", "plot_metrics",
                         "read_results_csv", "resume_training", "save_metrics", "save_model", "train", "validate"),
    **{trainer: _TASK_TRAINER_HOOKS for trainer in ("SegmentationTrainer", "PoseTrainer", "OBBTrainer",
                                                    "ClassificationTrainer")},
    "DetectionValidator": ("init_metrics", "pred_to_json", "eval_json"),
    "YOLO": ("_new", "task_map"),
    "YOLODataset": ("build_transforms",),
    "Mosaic": ("get_indexes",),
    "RandomPerspective": ("box_candidates",),
    "RandomHSV": ("apply_image",),
}


class UnsupportedUltralytics(InputError):
    """The installed ultralytics is outside the supported range (or lacks a hook cawb needs); the message is the
    one line a command prints."""


def _release(version: str) -> tuple[int, ...]:
    """``"8.4.103"`` -> ``(8, 4, 103)``; the digits each dot-separated part starts with (``8.4.0rc1`` -> (8, 4, 0))."""
    numbers = []
    for part in version.split("."):
        digits = part[: len(part) - len(part.lstrip("0123456789"))]
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def installed_version() -> str | None:
    """The version of the ultralytics Python would import (the first on ``sys.path``), or None when there is none;
    read from its package metadata, without importing it."""
    from importlib import metadata

    try:
        return metadata.version("ultralytics")
    except metadata.PackageNotFoundError:
        return None


def _fix() -> str:
    return f'pip install "ultralytics>={OLDEST_SUPPORTED},<={NEWEST_TESTED}"'


@functools.cache
def _missing_hooks() -> tuple[str, ...]:
    from ultralytics import YOLO
    from ultralytics.data import YOLODataset
    from ultralytics.data.augment import Mosaic, RandomHSV, RandomPerspective
    from ultralytics.models.yolo.classify import ClassificationTrainer
    from ultralytics.models.yolo.detect import DetectionTrainer, DetectionValidator
    from ultralytics.models.yolo.obb import OBBTrainer
    from ultralytics.models.yolo.pose import PoseTrainer
    from ultralytics.models.yolo.segment import SegmentationTrainer

    classes = {"DetectionTrainer": DetectionTrainer, "DetectionValidator": DetectionValidator, "YOLO": YOLO,
               "SegmentationTrainer": SegmentationTrainer, "PoseTrainer": PoseTrainer, "OBBTrainer": OBBTrainer,
               "ClassificationTrainer": ClassificationTrainer, "YOLODataset": YOLODataset, "Mosaic": Mosaic,
               "RandomPerspective": RandomPerspective, "RandomHSV": RandomHSV}
    return tuple(f"{owner}.{name}" for owner, names in HOOKS.items() for name in names
                 if getattr(classes[owner], name, None) is None)


def require_supported_ultralytics() -> str:
    """Check the installed ultralytics before any work; return its version.

    Older than :data:`OLDEST_SUPPORTED` is refused by its version (older releases hand the loss to the trainer in
    another form and lack hooks cawb needs: docs/RESULTS.md); any release is refused when one of its classes lacks
    a method of :data:`HOOKS` (checked on the classes themselves, which imports ultralytics and torch).

    Raises:
        UnsupportedUltralytics: one line naming the installed version, the supported range and the fix.
    """
    version = installed_version()
    if version is None:
        raise UnsupportedUltralytics(f"ultralytics is not installed; cawb needs ultralytics {OLDEST_SUPPORTED} to "
                                     f"{NEWEST_TESTED}: {_fix()}")
    if _release(version) < _release(OLDEST_SUPPORTED):
        raise UnsupportedUltralytics(f"ultralytics {version} is installed, older than cawb supports (ultralytics "
                                     f"{OLDEST_SUPPORTED} to {NEWEST_TESTED}): {_fix()}")
    missing = _missing_hooks()
    if missing:
        raise UnsupportedUltralytics(
            f"ultralytics {version} is installed, which lacks {', '.join(missing)}, which cawb needs "
            f"(supported: ultralytics {OLDEST_SUPPORTED} to {NEWEST_TESTED}): {_fix()}, or upgrade cawb")
    return version


# -- settings -------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _default_yaml() -> dict[str, Any]:
    # ultralytics' DEFAULT_CFG_DICT is this file's content; found without importing the package (2 s: torch)
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise UnsupportedUltralytics(f"ultralytics is not installed: {_fix()}")
    path = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def default_settings() -> dict[str, Any]:
    """ultralytics' own default settings (its ``cfg/default.yaml``, what ``DEFAULT_CFG_DICT`` holds), read without
    importing ultralytics."""
    return dict(_default_yaml())


@functools.cache
def setting_rules() -> SimpleNamespace:
    """ultralytics' type lists of its settings: ``float_keys``, ``fraction_keys``, ``int_keys``, ``bool_keys``,
    ``str_keys`` (frozensets) and ``int_minimums`` (key -> smallest valid integer). A list a release does not
    have (``CFG_INT_MIN`` and ``CFG_STR_KEYS`` are recent) is empty."""
    import ultralytics.cfg as cfg

    return SimpleNamespace(
        float_keys=frozenset(getattr(cfg, "CFG_FLOAT_KEYS", ())),
        fraction_keys=frozenset(getattr(cfg, "CFG_FRACTION_KEYS", ())),
        int_keys=frozenset(getattr(cfg, "CFG_INT_KEYS", ())),
        bool_keys=frozenset(getattr(cfg, "CFG_BOOL_KEYS", ())),
        str_keys=frozenset(getattr(cfg, "CFG_STR_KEYS", ())),
        int_minimums=dict(getattr(cfg, "CFG_INT_MIN", {})),
    )


#: The optimizers ``BaseTrainer.build_optimizer`` builds by name, in every supported release (it keeps them in a
#: local set; it ignores case). MuSGD is added where ultralytics ships it (:func:`optimizer_names`).
_OPTIMIZERS = ("Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSProp", "SGD", "auto")


@functools.cache
def optimizer_names() -> tuple[str, ...]:
    """The ``optimizer:`` names ultralytics' trainer builds, sorted (case does not matter to it)."""
    try:
        from ultralytics.optim import MuSGD  # noqa: F401 - where ultralytics ships it, its trainer builds it
        names = (*_OPTIMIZERS, "MuSGD")
    except ImportError:
        names = _OPTIMIZERS
    return tuple(sorted(names, key=str.lower))


def image_formats() -> frozenset[str]:
    """The image suffixes (lower case, no dot) ultralytics' dataset loaders read."""
    from ultralytics.data.utils import IMG_FORMATS

    return frozenset(IMG_FORMATS)


#: Suffixes of the formats ultralytics reads through a Pillow plugin it installs on first need (pi-heif).
PLUGIN_IMAGE_FORMATS = frozenset({"heic", "heif"})


def pillow_image_open() -> Callable[..., Any]:
    """Pillow's ``Image.open`` as Pillow ships it. Once imported, ultralytics replaces it with one that, given a
    file Pillow cannot identify, installs (or, offline, fails to install) the pi-heif plugin and logs about it: a
    check of a damaged image must not set that off."""
    import PIL.Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", PIL.Image.open)


# -- the trainer ----------------------------------------------------------------------------------------------------
def _trainer_stand_in(settings: Mapping[str, Any], epochs: int) -> SimpleNamespace:
    """Just enough of a trainer for ultralytics' scheduler and warmup methods to run on."""
    import torch

    args = SimpleNamespace(**{**default_settings(), **settings, "epochs": epochs})
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    return SimpleNamespace(args=args, epochs=epochs, optimizer=optimizer)


def stock_lr_factor(settings: Mapping[str, Any], epochs: int) -> Callable[[float], float]:
    """ultralytics' own per-epoch lr multiplier for these settings (one-cycle cosine 1 -> ``lrf`` with ``cos_lr``,
    else linear), taken from its trainer so that the two cannot drift apart."""
    from ultralytics.engine.trainer import BaseTrainer

    stand_in = _trainer_stand_in(settings, epochs)
    BaseTrainer._setup_scheduler(stand_in)
    return stand_in.lf


def stock_warmup_iterations(settings: Mapping[str, Any], epochs: int, batches_per_epoch: int) -> int:
    """How many iterations ultralytics' own trainer ramps the lr over (0: no warmup): its
    ``_get_warmup_iterations``, which leaves the last epoch unwarmed."""
    from ultralytics.engine.trainer import BaseTrainer

    return BaseTrainer._get_warmup_iterations(_trainer_stand_in(settings, epochs), batches_per_epoch)


#: The first release whose training loop sets the lr at the last warmup iteration too (``ni <= nw``), landing on
#: the scheduled value there. Before it the ramp stops one iteration short (``ni < nw``) and the lr stays at the
#: ramp's last value until the next epoch's scheduler step. A fact of the releases' training loops, which no
#: attribute shows: a fixed table.
_WARMUP_LANDS_ON_TARGET_FROM = "8.4.183"


def warmup_lands_on_target() -> bool:
    """Whether the installed ultralytics applies the warmup ramp at iteration ``nw`` itself (the scheduled lr), or
    (older releases) stops at ``nw - 1`` and keeps that value for the rest of the epoch."""
    version = installed_version()
    return version is None or _release(version) >= _release(_WARMUP_LANDS_ON_TARGET_FROM)


def model_names_for_load(trainer: Any, model: Any) -> Any:
    """``model`` with the dataset's class names set where ultralytics does that before loading weights (so that
    its loader can remap class heads by name); unchanged on releases that do not."""
    set_names = getattr(trainer, "set_model_names_for_load", None)
    return set_names(model) if callable(set_names) else model


#: The weights ultralytics' AMP check runs in every supported release (it downloads them when they are not in its
#: weights dir).
AMP_CHECK_WEIGHTS = "yolo26n.pt"


@contextlib.contextmanager
def replaced_amp_check(replacement: Callable[..., bool]) -> Iterator[None]:
    """Within the block ultralytics' trainer runs ``replacement(original_check, model, ...)`` as its AMP check."""
    import ultralytics.engine.trainer as ultralytics_trainer

    original = ultralytics_trainer.check_amp
    ultralytics_trainer.check_amp = functools.partial(replacement, original)
    try:
        yield
    finally:
        ultralytics_trainer.check_amp = original


@contextlib.contextmanager
def durable_checkpoint_writes(trainer: Any, path_type: type, strip: Callable[..., dict]) -> Iterator[None]:
    """Within the block, the checkpoint writes of ultralytics' trainer go through cawb's writers.

    Every supported release writes its checkpoints in two places, both in place: ``save_model`` writes the
    serialised checkpoint with ``write_bytes`` of the paths ``trainer.last``, ``trainer.best`` and
    ``trainer.wdir / "epochN.pt"``; ``final_eval`` calls the ``strip_optimizer`` its trainer module imported, which
    ``torch.save``s over the file. Here those three paths are ``path_type`` (a ``Path`` whose ``write_bytes`` is
    cawb's) and the trainer module's ``strip_optimizer`` is ``strip(original, f, s="", updates=None)``.
    """
    import ultralytics.engine.trainer as ultralytics_trainer

    saved = trainer.wdir, trainer.last, trainer.best
    original = ultralytics_trainer.strip_optimizer
    trainer.wdir, trainer.last, trainer.best = (path_type(path) for path in saved)
    ultralytics_trainer.strip_optimizer = functools.partial(strip, original)
    try:
        yield
    finally:
        trainer.wdir, trainer.last, trainer.best = saved
        ultralytics_trainer.strip_optimizer = original


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run CPU training with ``threads`` threads (None: leave ultralytics' choice), restoring the count after.

    ultralytics' ``select_device`` sets torch's thread count to its ``NUM_THREADS`` (``min(8, CPUs - 1)``) each time
    it picks the CPU, so the value it reads is set too. The count matters beyond speed: on the CPU, float sums
    split over another number of threads round differently, so a run repeats bit for bit only with the same count.
    """
    if threads is None:
        yield
        return
    import torch
    from ultralytics.utils import torch_utils

    saved = torch.get_num_threads(), torch_utils.NUM_THREADS
    torch.set_num_threads(threads)
    torch_utils.NUM_THREADS = threads
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch_utils.NUM_THREADS = saved[1]


# -- its places -----------------------------------------------------------------------------------------------------
def datasets_dir() -> Path:
    """ultralytics' ``datasets_dir`` setting: where ``yolo train`` looks for (and downloads) a relative ``path:``."""
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["datasets_dir"])


def runs_dir() -> Path:
    """ultralytics' ``runs_dir`` setting, as an absolute path (a relative one, ultralytics' default outside a git
    checkout, is the working directory's)."""
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["runs_dir"]).expanduser().absolute()


def settings_file() -> Path:
    """The file ultralytics keeps its settings in (``yolo settings`` edits it)."""
    from ultralytics.utils import SETTINGS_FILE

    return Path(SETTINGS_FILE)


def _bundled_dir() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")  # the package's place, without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "cfg" / "datasets"


def ultralytics_dataset_yaml(name: str) -> Path | None:
    """The dataset yaml ultralytics ships under ``name`` (``coco8``, ``coco8.yaml``, ``VOC.yaml``), or None."""
    folder = _bundled_dir()
    if folder is None or Path(name).name != name:
        return None
    for candidate in (name, f"{name}.yaml", f"{name}.yml"):
        path = folder / candidate
        if path.suffix in (".yaml", ".yml") and path.is_file():
            return path
    return None


def ultralytics_dataset_names() -> list[str]:
    """The names of the dataset yamls ultralytics ships, sorted (``coco8``, ``VOC``, ...)."""
    folder = _bundled_dir()
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder is not None and folder.is_dir() else []


def is_ultralytics_dataset_yaml(path: str | Path) -> bool:
    """Whether ``path`` is one of the dataset yamls ultralytics ships."""
    folder = _bundled_dir()
    return folder is not None and Path(path).resolve().parent == folder.resolve()


# -- the network ----------------------------------------------------------------------------------------------------
#: The environment variable ultralytics reads to stay offline.
OFFLINE_VARIABLE = "YOLO_OFFLINE"
#: The value cawb sets (every supported release reads the variable with its env_bool: 1, true, yes, on, ...).
_OFFLINE_VALUE = "1"
# values ultralytics' env_bool reads as true (case-insensitive, trimmed)
_TRUE = {"1", "true", "yes", "on", "y", "t"}
# modules that hold their own copy of ultralytics.utils.ONLINE, taken when they were imported
_ONLINE_HOLDERS = ("ultralytics.utils", "ultralytics.utils.checks", "ultralytics.utils.events")


def keep_ultralytics_offline() -> bool:
    """Set ``YOLO_OFFLINE`` unless the environment sets it, and, when it is on and ultralytics is already imported,
    switch the online flags it cached at its import (and its analytics) off. Imports nothing of ultralytics: it
    touches only modules already in ``sys.modules``. Returns whether ultralytics is kept offline (False only when
    the user set ``YOLO_OFFLINE`` to a false value)."""
    os.environ.setdefault(OFFLINE_VARIABLE, _OFFLINE_VALUE)
    if os.environ[OFFLINE_VARIABLE].strip().lower() not in _TRUE:
        return False
    for name in _ONLINE_HOLDERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ONLINE", False):
            module.ONLINE = False
    events = getattr(sys.modules.get("ultralytics.utils.events"), "events", None)
    if events is not None and getattr(events, "enabled", False):
        events.enabled = False
    return True


# -- where YOLOv5 v5.0 trained otherwise ----------------------------------------------------------------------------
#: The gradient norm ``BaseTrainer.optimizer_step`` clips to in every supported release: a constant in its code.
ULTRALYTICS_MAX_GRAD_NORM = 10.0
#: The aspect-ratio threshold of ``RandomPerspective.box_candidates`` (its default argument): after the random affine,
#: a box whose ``max(w/h, h/w)`` reaches it is dropped.
ULTRALYTICS_BOX_AR_THR = 100.0
#: The names under which ultralytics' detection validator hands the trainer mAP50 and mAP50-95.
MAP50_KEY, MAP50_95_KEY = "metrics/mAP50(B)", "metrics/mAP50-95(B)"


def optimizer_step(trainer: Any, max_grad_norm: float) -> Any:
    """ultralytics' optimizer step (``BaseTrainer.optimizer_step``) with the clipping threshold as a setting; returns
    the gradients' total 2-norm before clipping, a 0-d tensor on their device (reading it waits for the GPU).

    In ultralytics' order: unscale the AMP gradients, clip their total norm to ``max_grad_norm`` (0: no clipping; the
    norm is still computed), step the optimizer through the scaler (which skips a step whose gradients overflowed),
    update the scaler, zero the gradients, update the EMA. ultralytics fixes its threshold in the method's code
    (:data:`ULTRALYTICS_MAX_GRAD_NORM`), so the method is written out here; a test holds it against the installed
    release's, bit for bit.
    """
    import torch

    trainer.scaler.unscale_(trainer.optimizer)
    foreach = False if trainer.device.type == "npu" else None  # as ultralytics: no fused kernels on Ascend NPUs
    if max_grad_norm:
        norm = torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), max_norm=max_grad_norm, foreach=foreach)
    else:
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # clip_grad_norm_'s own, torch >= 2.6
        if get_total_norm is not None:
            norm = get_total_norm(grads, foreach=foreach)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.optimizer.zero_grad()
    if trainer.ema:
        trainer.ema.update(trainer.model)
    return norm


def lag_epoch_schedule(trainer: Any) -> None:
    """From now on ``trainer`` trains epoch ``e >= 1`` at its per-epoch schedule's value for ``e - 1`` (epoch 0 at the
    value for 0), as a scheduler stepped after each epoch does; ultralytics steps it at each epoch's start. Its
    warmup is left as it is: the ramp goes toward ``lf(e)`` of the epoch it is in.

    Every supported release steps the scheduler right after the ``on_train_epoch_start`` callbacks, and the
    schedulers it is given (its ``LambdaLR``, cawb's ``CosineAnnealingWarmbootingLR``) compute the lr from
    ``last_epoch`` alone: a callback that sets ``last_epoch`` back before that step lags the schedule however it was
    set up (a resume, ``time=``, the out-of-memory retry). Registering it twice changes nothing.
    """
    trainer.add_callback("on_train_epoch_start", _step_to_the_epoch_before)


def _step_to_the_epoch_before(trainer: Any) -> None:
    trainer.scheduler.last_epoch = max(trainer.epoch - 2, -1)  # the step that follows lands on epoch - 1


def configure_train_augmentation(dataset: Any, *, mosaic_buffer: bool, box_ar_thr: float, multiplicative_hue: bool,
                                 albumentations: bool) -> None:
    """Configure the training augmentation ultralytics built for ``dataset`` (``v8_transforms``), now and at every
    rebuild (closing mosaic rebuilds it), on this dataset alone:

    * ``mosaic_buffer`` False: mosaic draws its partner images from the whole dataset (ultralytics draws them from
      the images it loaded last, its buffer, unless ``cache: ram``);
    * ``box_ar_thr``: the aspect-ratio threshold of the box filter after the random affine
      (:data:`ULTRALYTICS_BOX_AR_THR` is ultralytics' own);
    * ``multiplicative_hue``: ``RandomHSV`` multiplies the hue by its random gain, as it does saturation and value
      (ultralytics shifts it);
    * ``albumentations`` False: no ``Albumentations`` stage (ultralytics' blur, median blur, gray and CLAHE at
      p=0.01, which run when the albumentations package is installed).

    A setting equal to ultralytics' leaves its objects untouched. What is set on the objects is picklable, for
    dataloader workers that are spawned rather than forked. A concatenation of datasets has each part configured.
    """
    settings = dict(mosaic_buffer=mosaic_buffer, box_ar_thr=float(box_ar_thr), multiplicative_hue=multiplicative_hue,
                    albumentations=albumentations)
    for part in getattr(dataset, "datasets", None) or [dataset]:
        part.build_transforms = functools.partial(_configured_build, type(part).build_transforms, part, settings)
        _configure(part.transforms, settings)


def _configured_build(build: Callable, dataset: Any, settings: dict[str, Any], hyp: Any) -> Any:
    return _configure(build(dataset, hyp), settings)


def _configure(transforms: Any, settings: dict[str, Any]) -> Any:
    """``transforms`` (a Compose, as built) with ``settings`` applied to every transform in it, nested ones too."""
    from ultralytics.data.augment import (
        Albumentations,
        BaseMixTransform,
        Compose,
        Mosaic,
        RandomHSV,
        RandomPerspective,
    )

    seen: set[int] = set()
    pending = [transforms]
    while pending:
        transform = pending.pop()
        if id(transform) in seen:  # MixUp and CutMix share the pre-transform Compose
            continue
        seen.add(id(transform))
        if isinstance(transform, Compose):
            if not settings["albumentations"]:
                transform.transforms = [t for t in transform.transforms if not isinstance(t, Albumentations)]
            pending.extend(transform.transforms)
        elif isinstance(transform, BaseMixTransform) and transform.pre_transform is not None:
            pending.append(transform.pre_transform)
        if isinstance(transform, Mosaic) and not settings["mosaic_buffer"]:
            transform.buffer_enabled = False
        elif isinstance(transform, RandomPerspective) and settings["box_ar_thr"] != ULTRALYTICS_BOX_AR_THR:
            transform.box_candidates = functools.partial(type(transform).box_candidates, ar_thr=settings["box_ar_thr"])
        elif isinstance(transform, RandomHSV) and settings["multiplicative_hue"]:
            transform.apply_image = functools.partial(_multiplicative_hue_hsv, transform)
    return transforms


def _multiplicative_hue_hsv(transform: Any, labels: dict[str, Any], params: Any = None) -> dict[str, Any]:
    """``RandomHSV.apply_image`` with YOLOv5 v5.0's hue: each of hue, saturation and value multiplied by its random
    gain ``1 + uniform(-1, 1) * gain`` (v5.0's ``augment_hsv``), hue wrapping at 180 as OpenCV stores it."""
    import cv2
    import numpy as np

    image = labels["img"]
    gains = (transform.hgain, transform.sgain, transform.vgain)
    if image.shape[-1] != 3 or not any(gains):  # as ultralytics: only 3-channel images, no draw when all are 0
        return labels
    r = np.random.uniform(-1, 1, 3) * gains + 1
    x = np.arange(0, 256, dtype=r.dtype)
    lut = np.stack(((x * r[0]) % 180, np.clip(x * r[1], 0, 255), np.clip(x * r[2], 0, 255)), -1).astype(image.dtype)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    cv2.cvtColor(cv2.LUT(hsv, lut.reshape(1, 256, 3)), cv2.COLOR_HSV2BGR, dst=image)
    return labels
