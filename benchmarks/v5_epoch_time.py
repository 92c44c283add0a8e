#!/usr/bin/env python
"""Epoch time of YOLOv5 release v5.0's network over ultralytics' yolov5 of the same size, on the same data.

Both arms train from scratch with cawb's trainer and the same settings (stock cosine schedule, same seed, batch,
image size and augmentation); what differs is the model: ``yolov5{size}-v5.0.yaml`` (anchor-based head, v5.0's loss
and anchor matching) against ultralytics' ``yolov5{size}.yaml`` (v6.0 backbone, anchor-free head, DFL, task-aligned
assigner). Runs are interleaved (ultralytics, v5.0, v5.0, ultralytics, ...) and the epoch times come from each run's
results.csv (differences of its 'time' column; the first epoch, with model setup, AutoAnchor and warmup, and the
last, with the final validation, are left out). Prints the medians, images per second and the ratio.
Goal: ratio <= 1.0 (the v5.0 head and assigner are lighter).

    python benchmarks/v5_epoch_time.py                                  # CPU: nano, generated shapes, 128 px
    python benchmarks/v5_epoch_time.py --size s --imgsz 640 --device 0 --data data/coco10k.yaml --rounds 2
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
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (each pair: one run per arm)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (>= 3: first and last are left out)")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", default="n", choices=list("nsmlx"), help="model size of both arms")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--data", help="dataset yaml (default: the generated shapes data, data/shapes.yaml)")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be >= 3 (the first and last epochs are not timed)")

    from cawb import YOLO

    data = dataset(args.data)
    common = dict(data=str(data.yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, nbs=args.batch,
                  device=args.device, workers=args.workers, optimizer="SGD", lr0=0.01, lrf=0.2, cos_lr=True,
                  cawb=False, warmup_epochs=1, seed=0, val=False, plots=False, exist_ok=True, verbose=False)
    arms = {"ultralytics": f"yolov5{args.size}.yaml", "v5.0": f"yolov5{args.size}-v5.0.yaml"}
    times: dict[str, list[float]] = {name: [] for name in arms}
    images = None
    with tempfile.TemporaryDirectory() as project:
        for round_index in range(args.rounds):
            for name in round_order(arms, round_index):
                run_name = f"{name}-{round_index}"
                model = YOLO(arms[name])
                model.train(project=project, name=run_name, **common)
                images = len(model.trainer.train_loader.dataset)
                times[name].extend(epoch_seconds(Path(project) / run_name))
                print(f"round {round_index + 1}/{args.rounds} {arms[name]}: last epoch {times[name][-1]:.2f} s",
                      flush=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"device {args.device}")
    print(f"data: {data.yaml}, {images} train images at {args.imgsz} px, batch {args.batch}")
    for name, median in medians.items():
        print(f"{arms[name]:>20}: median epoch {median:.3f} s over {len(times[name])} epochs, "
              f"{images / median:.1f} images/s")
    ratio = medians["v5.0"] / medians["ultralytics"]
    print(f"ratio (v5.0 / ultralytics): {ratio:.3f}   (goal <= 1.0)")


if __name__ == "__main__":
    main()
