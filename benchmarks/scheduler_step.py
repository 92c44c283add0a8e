#!/usr/bin/env python
"""Cost of CosineAnnealingWarmbootingLR.step() over torch's CosineAnnealingWarmRestarts.step().

Both schedulers drive the same optimizer (3 param groups, as ultralytics builds them). Timing is interleaved:
each round times a block of steps of one, then of the other, alternating which goes first, and the ratio of
the per-round medians is printed. Goal: <= 1.0x.

    python benchmarks/scheduler_step.py [--rounds 41] [--steps 2000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cawb import CosineAnnealingWarmbootingLR  # noqa: E402


def block_seconds(scheduler, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        scheduler.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--steps", type=int, default=2000, help="step() calls per timed block")
    args = parser.parse_args()

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 8, 3))
    groups = [{"params": list(layer.parameters()), "lr": 0.01} for layer in model]
    optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    optimizer.step()  # silence torch's "scheduler.step() before optimizer.step()" warning
    horizon = args.rounds * args.steps * 2  # a schedule long enough that no block runs past its end
    ours = CosineAnnealingWarmbootingLR(
        optimizer, epochs=horizon, steps=[horizon // 5, horizon // 2], step_scale=0.7, epoch_scale=4.0, lf_min=0.35
    )
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=max(horizon // 5, 1), T_mult=2)
    block_seconds(ours, args.steps), block_seconds(theirs, args.steps)  # warm-up

    ours_times, theirs_times = [], []
    for round_index in range(args.rounds):
        pair = [(ours, ours_times), (theirs, theirs_times)]
        for scheduler, times in pair if round_index % 2 == 0 else pair[::-1]:
            times.append(block_seconds(scheduler, args.steps))

    ours_us = statistics.median(ours_times) / args.steps * 1e6
    theirs_us = statistics.median(theirs_times) / args.steps * 1e6
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}, torch {torch.__version__}")
    print(f"CosineAnnealingWarmbootingLR.step():  {ours_us:.2f} us (median of {args.rounds} blocks of {args.steps})")
    print(f"CosineAnnealingWarmRestarts.step():   {theirs_us:.2f} us")
    print(f"ratio (cawb / torch warm restarts):   {ours_us / theirs_us:.3f}x   (goal <= 1.0x)")


if __name__ == "__main__":
    main()
