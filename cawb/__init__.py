"""cawb: cosine annealing with warm booting (restarts) for PyTorch and ultralytics YOLO training."""

__version__ = "0.1.0"
