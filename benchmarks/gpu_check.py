#!/usr/bin/env python
"""The GPU measurements of docs/RESULTS.md in one run, at most 8 minutes on one GPU (``benchmarks/gpu_check.sh``).

A GPU is lent to this work now and then for a few minutes; this is the script to run first when one is. It measures,
on a generated dataset of 1,000 training images at 640 px (100 distinct shapes images, each written 10 times under
its own name, as JPEG like COCO's), each part skipped with a note when the time left cannot hold it:

1. the article preset's epoch time (yolov5s-v5.0, 640 px, batch 16, AMP, stock cos schedule; no validation),
   extrapolated to the article's 150 epochs of 10,000 images;
2. training images per second of yolov5s-v5.0 against ultralytics' yolov5s, same data and settings, in this run;
3. the gradient norm of each of the first 300 optimizer steps of yolov5s-v5.0 with clipping off (``max_grad_norm: 0``,
   v5.0's default): the total norm of the unscaled gradients that the trainer records at each step (its
   ``grad_norms``, summarised per epoch in results.csv; ultralytics' own models clip it to 10);
4. ``compare.py --jobs 1/2/3`` on one GPU: wall time of the same 4 short runs (2 arms x 2 seeds, 2 epochs, their
   pycocotools evaluation included) with 1, 2 and 3 runs at once;
5. DDP over two GPUs (2 epochs), or a note that there is one GPU.

It prints a markdown section and appends it to docs/RESULTS.md (``--results``) with the card's name; ``--out``
keeps the section, the per-step gradient norms and the figures as JSON (on a lent machine, the files that come
back). ``--dry-run`` runs every part on the CPU at toy sizes in seconds, to test the script; it writes to
``--results`` only when given one, never to docs/RESULTS.md by default.

    bash benchmarks/gpu_check.sh --out /tmp/gpu-check                 # on the GPU machine
    bash benchmarks/gpu_check.sh --dry-run                             # anywhere: the script works
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from _epoch_timing import epoch_seconds  # puts the clone on sys.path

import compare_jobs  # noqa: E402  (benchmarks/ is on sys.path: this file's directory)

from cawb.utils.ultralytics_compat import ULTRALYTICS_MAX_GRAD_NORM  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "RESULTS.md"
#: The article: 150 epochs over a 10,000-image training split.
ARTICLE_EPOCHS, ARTICLE_IMAGES = 150, 10_000


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each part is: the full GPU check, or the CPU dry run that tests the script."""

    device: str
    distinct: int  # distinct training images, each written copies times
    copies: int
    val: int
    imgsz: int
    batch: int
    nbs: int | None  # None: ultralytics' 64 (v5.0's: 4 batches of 16 per optimizer step)
    workers: int
    size: str  # model size of the v5.0 / ultralytics pair
    epochs: int  # of the timed runs (the first and last are not timed)
    grad_steps: int
    compare_preset: str
    compare_epochs: int
    compare_seeds: tuple[int, ...]
    jobs: tuple[int, ...]
    budget_s: float

    @property
    def images(self) -> int:
        return self.distinct * self.copies


FULL = Sizes(device="0", distinct=100, copies=10, val=50, imgsz=640, batch=16, nbs=None, workers=8, size="s",
             epochs=4, grad_steps=300, compare_preset="article", compare_epochs=2, compare_seeds=(0, 1),
             jobs=(1, 2, 3), budget_s=480.0)
DRY = Sizes(device="cpu", distinct=8, copies=2, val=4, imgsz=64, batch=8, nbs=8, workers=0, size="n", epochs=3,
            grad_steps=4, compare_preset="cpu", compare_epochs=1, compare_seeds=(0,), jobs=(1,), budget_s=300.0)


class Clock:
    """The time left of the run's budget, and whether a part fits in it."""

    def __init__(self, budget_s: float):
        self.deadline = time.monotonic() + budget_s

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def fits(self, needed_s: float) -> bool:
        return self.left() >= needed_s


def card_name(device: str) -> str:
    """The GPU's name, or the CPU's model name on the CPU."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(int(device.split(",")[0]))
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()}"
    return f"CPU {platform.processor() or platform.machine()}"


def make_dataset(root: Path, sizes: Sizes) -> Path:
    """The benchmark's dataset yaml: ``sizes.images`` JPEG training images (the distinct generated ones, each
    written ``copies`` times) and the generated val split with its COCO ground truth (for compare's evaluation)."""
    import cv2
    import yaml

    from cawb.datasets.shapes import generate_shapes_dataset

    source_yaml = generate_shapes_dataset(root / "generated", train_images=sizes.distinct, val_images=sizes.val,
                                          imgsz=sizes.imgsz)
    source = source_yaml.parent
    for split in ("images", "labels"):
        (root / split / "train").mkdir(parents=True, exist_ok=True)
    for image in sorted((source / "images" / "train").iterdir()):
        pixels = cv2.imread(str(image))
        label = source / "labels" / "train" / f"{image.stem}.txt"
        for copy in range(sizes.copies):
            name = f"{image.stem}-{copy}"
            cv2.imwrite(str(root / "images" / "train" / f"{name}.jpg"), pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if label.exists():
                shutil.copyfile(label, root / "labels" / "train" / f"{name}.txt")
    data = yaml.safe_load(source_yaml.read_text())
    data.update(train=str(root / "images" / "train"), val=str(source / data["val"]),
                val_json=str(source / data["val_json"]))
    data.pop("train_json", None)  # it describes the distinct images, not these
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def train_run(data: Path, cfg: str, sizes: Sizes, project: Path, name: str, epochs: int,
              callbacks: dict[str, Callable] | None = None, device: str | None = None, **settings: Any) -> Path:
    """One training run of the article's cos arm (``hyp.scratch-cos.yaml``) with ``cfg``; its run directory."""
    from cawb.training.train import train

    options: dict[str, Any] = dict(data=str(data), cfg=cfg, hyp="scratch-cos", epochs=epochs, batch=sizes.batch,
                                   imgsz=sizes.imgsz, device=device or sizes.device, workers=sizes.workers,
                                   amp=True, val=False, plots=False, seed=0, project=str(project), name=name,
                                   **settings)
    if sizes.nbs is not None:
        options["nbs"] = sizes.nbs
    return train(callbacks=callbacks, **options).save_dir


def part_epoch_times(data: Path, sizes: Sizes, work: Path, clock: Clock) -> dict[str, Any]:
    """Parts 1 and 2: median epoch time of yolov5{size}-v5.0 and ultralytics' yolov5{size}."""
    arms = {"v5.0": f"yolov5{sizes.size}-v5.0.yaml", "ultralytics": f"yolov5{sizes.size}.yaml"}
    result: dict[str, Any] = {"images": sizes.images, "imgsz": sizes.imgsz, "batch": sizes.batch}
    for arm, cfg in arms.items():
        if not clock.fits(60 if sizes is FULL else 5):
            result[arm] = {"skipped": "the time budget ran out"}
            continue
        started = time.monotonic()
        save_dir = train_run(data, cfg, sizes, work / "timing", arm, sizes.epochs)
        seconds = statistics.median(epoch_seconds(save_dir))
        result[arm] = {"cfg": cfg, "epoch_s": seconds, "images_per_s": sizes.images / seconds,
                       "run_s": time.monotonic() - started}
    v5 = result["v5.0"]
    if "epoch_s" in v5:
        v5["article_hours"] = v5["epoch_s"] / sizes.images * ARTICLE_IMAGES * ARTICLE_EPOCHS / 3600
    return result


def part_gradient_norms(data: Path, sizes: Sizes, work: Path, clock: Clock) -> dict[str, Any]:
    """Part 3: the gradient norm of the first ``grad_steps`` optimizer steps of yolov5{size}-v5.0, clipping off."""
    if not clock.fits(90 if sizes is FULL else 5):
        return {"skipped": "the time budget ran out"}
    by_epoch: dict[int, list[Any]] = {}
    reserve = 200 if sizes is FULL else 0  # what parts 4 and 5 need

    def record_and_stop(trainer) -> None:
        by_epoch[trainer.epoch] = list(trainer.grad_norms)  # the epoch's steps so far (the trainer's own record)
        if sum(map(len, by_epoch.values())) >= sizes.grad_steps or clock.left() < reserve:
            trainer.stop = True  # ultralytics ends the epoch here

    # The article's schedule: 150 epochs, warmup over 3 epochs of its 625 batches (10,000 images / 16), so the
    # measured steps see the learning rates the article's first steps saw.
    warmup = 3 * math.ceil(ARTICLE_IMAGES / sizes.batch)
    train_run(data, f"yolov5{sizes.size}-v5.0.yaml", sizes, work / "norms", "norms", epochs=ARTICLE_EPOCHS,
              callbacks={"on_train_batch_end": record_and_stop}, warmup_min_iters=warmup, max_grad_norm=0.0)
    norms = [float(norm) for epoch in sorted(by_epoch) for norm in by_epoch[epoch]][:sizes.grad_steps]
    finite = [n for n in norms if math.isfinite(n)]
    summary: dict[str, Any] = {"steps": len(norms), "non_finite": len(norms) - len(finite), "norms": norms}
    if finite:
        ordered = sorted(finite)
        summary.update(median=statistics.median(finite), p10=ordered[len(ordered) // 10],
                       p90=ordered[(9 * len(ordered)) // 10], max=ordered[-1], first=finite[0],
                       above_clip=sum(n > ULTRALYTICS_MAX_GRAD_NORM for n in finite))
    return summary


def part_compare_jobs(data: Path, sizes: Sizes, work: Path, clock: Clock) -> dict[str, Any]:
    """Part 4: wall time of compare.py with ``--jobs`` 1, 2, 3 on the same runs."""
    result: dict[str, Any] = {"runs": 2 * len(sizes.compare_seeds), "epochs": sizes.compare_epochs, "wall_s": {}}
    numbers = {}
    for jobs in sizes.jobs:
        wall_needed = 40 if sizes is FULL else 5
        if not clock.fits(wall_needed):
            result["wall_s"][jobs] = None
            continue
        args = SimpleNamespace(preset=sizes.compare_preset, epochs=sizes.compare_epochs, imgsz=sizes.imgsz,
                               seeds=list(sizes.compare_seeds), device=sizes.device, data=str(data), threads=None,
                               batch_size=sizes.batch, overrides=[])
        project = work / f"compare-jobs-{jobs}"
        try:
            result["wall_s"][jobs] = compare_jobs.run(project, jobs, args, timeout=clock.left())
        except (subprocess.TimeoutExpired, compare_jobs.CompareFailed) as error:
            result["wall_s"][jobs] = None
            result.setdefault("errors", {})[jobs] = str(error).splitlines()[0]
            continue
        numbers[jobs] = compare_jobs.per_run_numbers(project)
    base = numbers.get(1)
    result["same_results"] = {jobs: numbers[jobs] == base for jobs in numbers if jobs != 1 and base is not None}
    return result


def part_ddp(data: Path, sizes: Sizes, work: Path, clock: Clock) -> dict[str, Any]:
    """Part 5: two-GPU DDP epoch time, or why not."""
    import torch

    gpus = torch.cuda.device_count() if sizes.device != "cpu" else 0
    if gpus < 2:
        return {"skipped": f"{gpus} GPU{'s' if gpus != 1 else ''}: DDP needs two"}
    if not clock.fits(60):
        return {"skipped": "the time budget ran out"}
    save_dir = train_run(data, f"yolov5{sizes.size}-v5.0.yaml", sizes, work / "ddp", "ddp", sizes.epochs,
                         device="0,1")
    seconds = statistics.median(epoch_seconds(save_dir))
    return {"gpus": 2, "epoch_s": seconds, "images_per_s": sizes.images / seconds}


def _seconds(value: float | None) -> str:
    return "not run (time budget)" if value is None else f"{value:.1f} s"


def render(figures: dict[str, Any]) -> str:
    """The markdown section appended to docs/RESULTS.md."""
    sizes, timing, norms, jobs, ddp = (figures[key] for key in ("sizes", "timing", "norms", "jobs", "ddp"))
    title = "dry run on the CPU (toy sizes: not a measurement)" if figures["dry_run"] else figures["card"]
    lines = [f"### GPU check, {figures['date']}: {title}", "",
             f"`bash benchmarks/gpu_check.sh{' --dry-run' if figures['dry_run'] else ''}` on {figures['card']} "
             f"({figures['gpus']} GPU(s); torch {figures['torch']}, ultralytics {figures['ultralytics']}; "
             f"{figures['cpus']} CPUs; commit {figures['commit']}; {figures['wall_s']:.0f} s wall). Data: "
             f"{sizes['images']:,} generated training images ({sizes['distinct']} distinct, JPEG) at {sizes['imgsz']} "
             f"px, batch {sizes['batch']}, AMP, {sizes['workers']} workers.", "",
             "| what | measured |", "| --- | --- |"]
    for arm in ("v5.0", "ultralytics"):
        record = timing.get(arm, {})
        if "epoch_s" in record:
            lines.append(f"| epoch of {record['cfg']} ({timing['images']:,} images, median of the timed epochs) | "
                         f"{record['epoch_s']:.2f} s, {record['images_per_s']:.1f} images/s |")
        else:
            lines.append(f"| epoch of the {arm} model | skipped: {record.get('skipped', 'not run')} |")
    v5, ultra = timing.get("v5.0", {}), timing.get("ultralytics", {})
    if "article_hours" in v5:
        lines.append(f"| the article preset extrapolated: {ARTICLE_EPOCHS} epochs x {ARTICLE_IMAGES:,} images "
                     f"(training only, no validation) | {v5['article_hours']:.2f} h |")
    if "images_per_s" in v5 and "images_per_s" in ultra:
        lines.append(f"| training images/s, v5.0 / ultralytics | {v5['images_per_s'] / ultra['images_per_s']:.3f} |")
    if "steps" in norms:
        if "median" in norms:
            lines.append(f"| gradient norm, first {norms['steps']} optimizer steps, clipping off | median "
                         f"{norms['median']:.2f}, p10 {norms['p10']:.2f}, p90 {norms['p90']:.2f}, max "
                         f"{norms['max']:.2f}, first {norms['first']:.2f}; {norms['above_clip']} of "
                         f"{norms['steps'] - norms['non_finite']} above {ULTRALYTICS_MAX_GRAD_NORM:g}; "
                         f"{norms['non_finite']} non-finite (AMP overflow, step skipped) |")
    else:
        lines.append(f"| gradient norms | skipped: {norms['skipped']} |")
    walls = jobs["wall_s"]
    base = walls.get(1)
    shown = " / ".join(f"--jobs {j}: {_seconds(walls[j])}" for j in walls)
    speedups = ", ".join(f"x{base / walls[j]:.2f} at --jobs {j}" for j in walls if j != 1 and base and walls[j])
    same = ", ".join(f"--jobs {j} {'identical' if ok else 'DIFFERENT'}" for j, ok in jobs["same_results"].items())
    lines.append(f"| compare.py, {jobs['runs']} runs of {jobs['epochs']} epoch(s) with their evaluation | {shown}"
                 f"{'; speed-up ' + speedups if speedups else ''}{'; per-run mAPs ' + same if same else ''} |")
    if "skipped" in ddp:
        lines.append(f"| DDP | skipped: {ddp['skipped']} |")
    else:
        lines.append(f"| DDP, 2 GPUs | {ddp['epoch_s']:.2f} s/epoch, {ddp['images_per_s']:.1f} images/s |")
    return "\n".join(lines) + "\n"


def _commit() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip() or "unknown"
    return "unknown (no git)"


def run_check(sizes: Sizes, dry_run: bool, work: Path) -> dict[str, Any]:
    """All parts, in order, within ``sizes.budget_s``; every figure as plain data."""
    import torch
    import ultralytics

    started = time.monotonic()
    clock = Clock(sizes.budget_s)
    data = make_dataset(work / "data", sizes)
    figures: dict[str, Any] = {
        "date": datetime.date.today().isoformat(), "dry_run": dry_run, "card": card_name(sizes.device),
        "gpus": torch.cuda.device_count(), "torch": torch.__version__, "ultralytics": ultralytics.__version__,
        "cpus": os.cpu_count(), "commit": _commit(),
        "sizes": {**dataclasses.asdict(sizes), "images": sizes.images},
    }
    for key, part in (("timing", part_epoch_times), ("norms", part_gradient_norms), ("jobs", part_compare_jobs),
                      ("ddp", part_ddp)):
        figures[key] = part(data, sizes, work, clock)
        print(f"gpu_check: {key} done, {clock.left():.0f} s of the budget left", flush=True)
    figures["wall_s"] = time.monotonic() - started
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: tests the script in seconds")
    parser.add_argument("--results", type=Path, help="markdown file to append the section to (default: "
                        "docs/RESULTS.md; with --dry-run, none)")
    parser.add_argument("--out", type=Path, help="directory for gpu_check.md, gpu_check.json (with the per-step "
                        "gradient norms)")
    parser.add_argument("--budget", type=float, help="seconds the whole check may take (default: 480; dry run 300)")
    args = parser.parse_args(argv)
    sizes = DRY if args.dry_run else FULL
    if args.budget is not None:
        sizes = dataclasses.replace(sizes, budget_s=args.budget)
    results = args.results if args.results is not None or args.dry_run else RESULTS
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("error: no CUDA GPU here; run with --dry-run to test the script on the CPU", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="cawb-gpu-check-") as scratch:
        figures = run_check(sizes, args.dry_run, Path(scratch))
    section = render(figures)
    print("\n" + section)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.md").write_text(section)
        (args.out / "gpu_check.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if results is not None:
        with open(results, "a", encoding="utf-8") as handle:
            handle.write("\n" + section)
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
