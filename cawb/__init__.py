"""cawb: cosine annealing with warm booting (restarts) for PyTorch and ultralytics YOLO training.

``from cawb import CawbSchedule`` gives the pure-Python schedule (no torch import);
``from cawb import CosineAnnealingWarmbootingLR`` the PyTorch scheduler (imports torch on first use).
"""

from .schedule import CawbConfigError, CawbSchedule

__version__ = "0.1.0"
__all__ = ["CawbConfigError", "CawbSchedule", "CosineAnnealingWarmbootingLR", "__version__"]


def __getattr__(name: str):
    # Lazy so that the schedule layer stays importable (and fast) without torch.
    if name == "CosineAnnealingWarmbootingLR":
        from .lr_scheduler import CosineAnnealingWarmbootingLR

        return CosineAnnealingWarmbootingLR
    raise AttributeError(f"module 'cawb' has no attribute {name!r}")
