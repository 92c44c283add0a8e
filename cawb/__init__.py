"""cawb: cosine annealing with warm booting (restarts) for PyTorch and ultralytics YOLO training.

``from cawb import CawbSchedule`` gives the pure-Python schedule (no torch import);
``from cawb import CosineAnnealingWarmbootingLR`` the PyTorch scheduler, ``from cawb import CawbDetectionTrainer``
the ultralytics trainer, ``from cawb import YOLO`` ultralytics' ``YOLO`` that also builds the YOLOv5 v5.0 yamls
(``yolov5s-v5.0.yaml``, the article's model) and trains with that trainer, and ``cawb.train(...)`` what
``train_cawb.py`` runs (they import torch / ultralytics on first use).

Layers (each imports only those below it): the core modules here (``schedule``, ``lr_scheduler``, ``hyp``); the
adapters ``cawb.yolov5`` (the v5.0 network and loss), ``cawb.training``, ``cawb.datasets``, ``cawb.coco`` and, on top,
``cawb.experiment``; ``cawb.utils`` beneath them all.
"""

from cawb.utils.network import keep_ultralytics_offline

# cawb never touches the network: YOLO_OFFLINE=1 unless set, and ultralytics' cached online flags switched off when
# it was imported before cawb (see cawb.utils.network and cawb.training.offline).
keep_ultralytics_offline()

from cawb.schedule import CawbConfigError, CawbSchedule  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "CawbConfigError",
    "CawbDetectionTrainer",
    "CawbSchedule",
    "CosineAnnealingWarmbootingLR",
    "YOLO",
    "__version__",
    "train",
]


def __getattr__(name: str):
    # Lazy so that the schedule layer stays importable (and fast) without torch.
    if name == "CosineAnnealingWarmbootingLR":
        from cawb.lr_scheduler import CosineAnnealingWarmbootingLR

        return CosineAnnealingWarmbootingLR
    if name == "CawbDetectionTrainer":
        from cawb.training.trainer import CawbDetectionTrainer

        return CawbDetectionTrainer
    if name == "YOLO":
        from cawb.training.model import YOLO

        return YOLO
    if name == "train":
        from cawb.training.train import train

        return train
    raise AttributeError(f"module 'cawb' has no attribute {name!r}")
