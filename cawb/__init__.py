"""cawb: cosine annealing with warm booting (restarts) for PyTorch and ultralytics YOLO training.

``from cawb import CawbSchedule`` gives the pure-Python schedule (no torch import);
``from cawb import CosineAnnealingWarmbootingLR`` the PyTorch scheduler and ``from cawb import CawbDetectionTrainer``
the ultralytics trainer (they import torch / ultralytics on first use).
"""

import os

# cawb never touches the network; ultralytics reads this once, when it is first imported (see cawb.offline).
os.environ.setdefault("YOLO_OFFLINE", "1")

from .schedule import CawbConfigError, CawbSchedule  # noqa: E402

__version__ = "0.1.0"
__all__ = ["CawbConfigError", "CawbDetectionTrainer", "CawbSchedule", "CosineAnnealingWarmbootingLR", "__version__"]


def __getattr__(name: str):
    # Lazy so that the schedule layer stays importable (and fast) without torch.
    if name == "CosineAnnealingWarmbootingLR":
        from .lr_scheduler import CosineAnnealingWarmbootingLR

        return CosineAnnealingWarmbootingLR
    if name == "CawbDetectionTrainer":
        from .trainer import CawbDetectionTrainer

        return CawbDetectionTrainer
    raise AttributeError(f"module 'cawb' has no attribute {name!r}")
