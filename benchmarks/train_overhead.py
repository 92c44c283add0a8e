#!/usr/bin/env python
"""Epoch time of training with CAWB over training with ultralytics' stock cosine schedule.

Both arms train yolov5n from scratch on the same generated shapes data with the same seed and settings; the only
difference is the trainer: ``CawbDetectionTrainer`` with ``cawb: true`` against ultralytics' own
``DetectionTrainer`` with ``cos_lr: true``. Runs are interleaved (cos, cawb, cawb, cos, ...), and the epoch times
come from each run's results.csv (differences of its 'time' column; the first epoch, with model setup and
warmup, and the last, with the final validation, are left out). The ratio of the medians is printed.
Goal: <= 1.02.

    python benchmarks/train_overhead.py [--rounds 5] [--epochs 6] [--imgsz 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from _epoch_timing import dataset, epoch_seconds, round_order  # puts the clone on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="pairs of runs (each pair: one run per arm)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--imgsz", type=int, default=128)
    args = parser.parse_args()

    from ultralytics import YOLO

    from cawb import CawbDetectionTrainer

    data = dataset()
    common = dict(data=str(data.yaml), epochs=args.epochs, imgsz=args.imgsz, batch=16, nbs=16, device="cpu",
                  workers=0, optimizer="SGD", lr0=0.01, lrf=0.2, warmup_epochs=1, seed=0, val=False, plots=False,
                  exist_ok=True, verbose=False)
    arms = {
        "stock cos": dict(trainer=None, cos_lr=True),
        "cawb": dict(trainer=CawbDetectionTrainer, cawb=True, cawb_steps=[2, 4], cawb_step_scale=0.7,
                     cawb_epoch_scale=4.0, cawb_lf_min=0.35),
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as project:
        for round_index in range(args.rounds):
            for name in round_order(arms, round_index):
                settings = {k: v for k, v in arms[name].items() if k != "trainer"}
                model = YOLO("yolov5n.yaml")
                run_name = f"{name.replace(' ', '-')}-{round_index}"
                kwargs = dict(common, project=project, name=run_name, **settings)
                if arms[name]["trainer"] is not None:
                    kwargs["trainer"] = arms[name]["trainer"]
                model.train(**kwargs)
                times[name].extend(epoch_seconds(Path(project) / run_name))
                print(f"round {round_index + 1}/{args.rounds} {name}: epochs {times[name][-1]:.2f} s (last)", flush=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"data: generated shapes, {len(list(data.train[0].iterdir()))} train images at {args.imgsz} px, yolov5n, batch 16")
    for name, median in medians.items():
        print(f"{name:>9}: median epoch {median:.3f} s over {len(times[name])} epochs")
    print(f"ratio (cawb / stock cos): {medians['cawb'] / medians['stock cos']:.3f}   (goal <= 1.02)")


if __name__ == "__main__":
    main()
