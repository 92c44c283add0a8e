"""What the epoch-time benchmarks share (train_overhead.py, v5_epoch_time.py): the clone on sys.path, ultralytics
quiet and offline, the data, the interleaving of the arms and the epoch times read from a run's results.csv."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's cawb, installed or not
os.environ.setdefault("YOLO_VERBOSE", "False")  # ultralytics' per-run logs would bury the measurements

import cawb  # noqa: E402,F401  (sets YOLO_OFFLINE before ultralytics is imported)
from cawb.datasets.resolve import ResolvedDataset, resolve_dataset_yaml  # noqa: E402
from cawb.training.offline import ensure_local_fonts  # noqa: E402
from cawb.utils.resources import bundled_data  # noqa: E402


def dataset(path: str | Path | None = None) -> ResolvedDataset:
    """The benchmark's data: ``path``, or the generated shapes data (made on first use)."""
    ensure_local_fonts()
    return resolve_dataset_yaml(path or bundled_data("shapes.yaml"))


def round_order(arms: Sequence[str], round_index: int) -> list[str]:
    """Arms in alternating order (a, b, b, a, ...), so that neither always runs first on a warming machine."""
    return list(arms) if round_index % 2 == 0 else list(arms)[::-1]


def epoch_seconds(save_dir: Path) -> list[float]:
    """Epoch durations from a run's results.csv ('time' is cumulative), without the first epoch (model setup,
    warmup) and the last (the final validation)."""
    lines = (save_dir / "results.csv").read_text().splitlines()
    column = lines[0].split(",").index("time")
    ends = [float(line.split(",")[column]) for line in lines[1:]]
    durations = [later - earlier for earlier, later in zip(ends, ends[1:])]
    return durations[:-1]
