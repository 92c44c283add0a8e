#!/usr/bin/env python
"""Wall time of the same comparison with ``--jobs 1`` and with ``--jobs N``: does running runs at once pay?

The same 4 short runs (2 arms x 2 seeds by default) are trained by ``scripts/compare.py`` once per ``--jobs`` value,
each time into a fresh project, and the wall time of each whole command is measured. Printed: the wall times, the
speed-up ``t(jobs 1) / t(jobs N)`` and whether every run's results (eval.json numbers) are the same as with
``--jobs 1``.

On a 2-core CPU the speed-up is expected near 1: the runs share the same two cores. Note that ultralytics gives
a single CPU run ``min(8, CPUs - 1)`` threads (1 on 2 cores) while ``--jobs N`` splits the CPUs between the runs
(1 each on 2 cores with 2 jobs); ``--threads`` sets the same count for every run. On a GPU it measures whether
packing runs on one GPU pays (``--device 0 --jobs 2 3``).

    python benchmarks/compare_jobs.py                                   # CPU: cpu preset, 3 epochs, 128 px
    python benchmarks/compare_jobs.py --threads 1                       # the same thread count in both
    python benchmarks/compare_jobs.py --preset article --device 0 --jobs 2 3 --epochs 3 --imgsz 640 \\
        --data data/coco10k.yaml                                        # one GPU, 2 and 3 runs at once
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "compare.py"


class CompareFailed(RuntimeError):
    """compare.py exited with an error; the message holds the end of its stderr."""


def run(project: Path, jobs: int, args: argparse.Namespace, timeout: float | None = None) -> float:
    """Wall seconds of one compare.py command with ``--jobs jobs``. Past ``timeout`` seconds it is stopped as a job
    scheduler stops it (SIGTERM: compare stops its workers) and ``subprocess.TimeoutExpired`` is raised."""
    command = [sys.executable, str(SCRIPT), "--preset", args.preset, "--epochs", str(args.epochs), "--imgsz",
               str(args.imgsz), "--seeds", *map(str, args.seeds), "--jobs", str(jobs), "--project", str(project)]
    for flag, value in (("--device", args.device), ("--data", args.data), ("--threads", args.threads),
                        ("--batch-size", args.batch_size)):
        if value is not None:
            command += [flag, str(value)]
    command += ["plots=False", *args.overrides]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
        raise
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise CompareFailed(f"--jobs {jobs} failed (exit {process.returncode}):\n{stderr[-3000:]}")
    return elapsed


def per_run_numbers(project: Path) -> dict[str, tuple]:
    numbers = {}
    for record in sorted((project / "runs").glob("*/eval.json")):
        evaluation = json.loads(record.read_text())
        numbers[record.parent.name] = tuple(evaluation[w][k] for w in ("final", "best") for k in ("map50", "map50_95"))
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", nargs="+", type=int, default=[2], help="job counts to compare with --jobs 1")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="2 arms x these seeds = the runs")
    parser.add_argument("--device", help="default: the preset's")
    parser.add_argument("--data", help="default: the preset's")
    parser.add_argument("--batch-size", type=int, help="default: the preset's")
    parser.add_argument("--threads", type=int, help="CPU threads per run (default: compare.py's, see above)")
    parser.add_argument("--keep", type=Path, help="keep the projects under this directory (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="passed on to every run")
    args = parser.parse_args()

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cpus} CPUs usable; preset {args.preset}, "
          f"{args.epochs} epochs, {args.imgsz} px, seeds {' '.join(map(str, args.seeds))}, device "
          f"{args.device or '(preset)'}, threads per run {args.threads or '(compare.py default)'}")
    with tempfile.TemporaryDirectory(prefix="cawb-compare-jobs-") as scratch:
        root = args.keep or Path(scratch)
        times, numbers = {}, {}
        for jobs in [1, *[j for j in args.jobs if j != 1]]:
            project = root / f"jobs-{jobs}"
            try:
                times[jobs] = run(project, jobs, args)
            except CompareFailed as error:
                sys.exit(str(error))
            numbers[jobs] = per_run_numbers(project)
            print(f"--jobs {jobs}: {times[jobs]:.1f} s wall for {len(numbers[jobs])} runs")
        for jobs in times:
            if jobs == 1:
                continue
            same = "identical" if numbers[jobs] == numbers[1] else "DIFFERENT"
            print(f"speed-up --jobs {jobs} over --jobs 1: {times[1] / times[jobs]:.2f}x "
                  f"(wall-time ratio t1/t{jobs}); per-run results {same}")


if __name__ == "__main__":
    main()
