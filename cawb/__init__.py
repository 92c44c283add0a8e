"""cawb: cosine annealing with warm booting (restarts) for PyTorch and ultralytics YOLO training.

``from cawb import CawbSchedule`` gives the pure-Python schedule (no torch import);
``from cawb import CosineAnnealingWarmbootingLR`` the PyTorch scheduler, ``from cawb import CawbDetectionTrainer``
the ultralytics trainer (``CawbSegmentationTrainer``, ``CawbPoseTrainer``, ``CawbOBBTrainer`` and
``CawbClassificationTrainer`` for the other tasks), ``from cawb import YOLO`` ultralytics' ``YOLO`` that also builds
the YOLOv5 v5.0 yamls (``yolov5s-v5.0.yaml``, the article's model) and trains with the trainer of the model's task, ``cawb.plan_run(...)`` a checked run
configuration and ``cawb.train(...)`` what ``train_cawb.py`` runs (they import torch / ultralytics on first use).
Every error cawb raises on purpose is a :class:`CawbError`; bad input is an :class:`InputError` (a ``ValueError``).

Importing cawb changes nothing outside it: cawb's commands and trainers keep ultralytics offline
(``YOLO_OFFLINE=1``) when they start, not ``import cawb``.

Layers (each imports only those below it): the schedule (``schedule``, ``lr_scheduler``) over ``cawb.utils``; the
adapters ``cawb.yolov5`` (the v5.0 network, loss and recipe), ``cawb.datasets``, ``cawb.coco``, ``cawb.training``
(hyp files, run configuration, the trainer parts) and, on top, ``cawb.experiment``; the faces in ``cawb.cli``.
"""

from cawb.schedule import CawbConfigError, CawbSchedule
from cawb.utils.errors import CawbError, HypError, InputError, Interrupted

__version__ = "0.1.0"
__all__ = [
    "CawbClassificationTrainer",
    "CawbConfigError",
    "CawbDetectionTrainer",
    "CawbError",
    "CawbOBBTrainer",
    "CawbPoseTrainer",
    "CawbSchedule",
    "CawbSegmentationTrainer",
    "CosineAnnealingWarmbootingLR",
    "HypError",
    "InputError",
    "Interrupted",
    "RunConfig",
    "YOLO",
    "__version__",
    "plan_run",
    "train",
]

# Lazy, so that the schedule stays importable (and fast) without torch: name -> (module, attribute).
_LAZY = {
    "CosineAnnealingWarmbootingLR": ("cawb.lr_scheduler", "CosineAnnealingWarmbootingLR"),
    "CawbDetectionTrainer": ("cawb.training.trainer", "CawbDetectionTrainer"),
    "CawbSegmentationTrainer": ("cawb.training.trainer", "CawbSegmentationTrainer"),
    "CawbPoseTrainer": ("cawb.training.trainer", "CawbPoseTrainer"),
    "CawbOBBTrainer": ("cawb.training.trainer", "CawbOBBTrainer"),
    "CawbClassificationTrainer": ("cawb.training.trainer", "CawbClassificationTrainer"),
    "YOLO": ("cawb.training.model", "YOLO"),
    "RunConfig": ("cawb.training.config", "RunConfig"),
    "plan_run": ("cawb.training.config", "plan_run"),
    "train": ("cawb.training.train", "train"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'cawb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
