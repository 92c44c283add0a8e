"""The supported range of ultralytics releases and the refusal of any other, in one line."""

from __future__ import annotations

import functools

from cawb.utils.errors import InputError

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


