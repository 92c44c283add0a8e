"""Shared test setup: nothing may touch the network, and figures render without a display."""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics: skip its online checks (there is no network here)
os.environ.setdefault("MPLBACKEND", "Agg")
