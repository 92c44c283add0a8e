#!/usr/bin/env python
"""Benchmark: build the 10k/1k COCO subset vs a plain ``json.load`` of a COCO2017-train-sized annotation file.

Generates (under --workdir, in /tmp by default, deleted afterwards unless --keep) a synthetic COCO2017 layout:
``instances_train2017.json`` with 118,287 images and ~860,000 annotations (~450 MB: polygon segmentations with
many points make up the bulk, ~1% crowd annotations with RLE counts, non-contiguous category ids),
``instances_val2017.json`` with 5,000 images and ~36,800 annotations, and an empty placeholder file per image
so the subset's symlinks have targets. Then, in separate child processes, interleaved when repeated:

* ``json.load`` of the train file;
* ``build_coco_subset`` with the default command's settings (10,000 train from train2017, 1,000 val from
  val2017, seed 0, labels and JSON written), into a fresh output directory;
* ``read_instances`` of the train file alone, keeping the default draw's 10,000 images: the parsing part of the
  build, without the 22,000 files the build then creates (whose time varies with the file system's state).

Time is measured inside each child around the operation alone (imports and interpreter start excluded on both
sides); peak memory is each child's whole-process maximum RSS (``os.wait4``). Prints the ratios build / load, the
goals, and read / load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAIN_IMAGES, TRAIN_ANNOTATIONS = 118_287, 860_001
VAL_IMAGES, VAL_ANNOTATIONS = 5_000, 36_781
_GENERATOR_VERSION = "1"  # bump when the synthetic files change, so a kept --workdir is regenerated
_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
_SIZES = [(640, 480), (480, 640), (640, 427), (500, 375), (640, 360), (427, 640)]


def write_synthetic_coco(path: Path, split: str, n_images: int, n_annotations: int, seed: int) -> list[str]:
    """Write a COCO-format instances file shaped like COCO2017's; return the image file names.

    Segmentations are drawn from a pool of pre-formatted polygons (the parser still reads every number; pooling
    only keeps generation fast). Formatting follows the official files (``"key": value,"key2"`` separators).
    """
    rng = random.Random(seed)
    polygons = []
    for _ in range(4000):
        parts = rng.choice([1, 1, 1, 1, 2, 3])
        rings = []
        for _ in range(parts):
            points = max(3, int(rng.expovariate(parts / 25)))
            rings.append("[" + ",".join(f"{rng.uniform(0, 640):.2f}" for _ in range(2 * points)) + "]")
        polygons.append("[" + ",".join(rings) + "]")
    rles = []
    for _ in range(200):
        counts = ",".join(str(rng.randint(1, 400)) for _ in range(rng.randint(50, 400)))
        rles.append(f'{{"counts": [{counts}],"size": [480,640]}}')
    image_ids = rng.sample(range(1, 600_000), n_images)
    sizes = {image_id: rng.choice(_SIZES) for image_id in image_ids}
    names = [f"{image_id:012d}.jpg" for image_id in image_ids]
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            '{"info": {"description": "synthetic COCO 2017","url": "http://cocodataset.org","version": "1.0",'
            '"year": 2017,"contributor": "cawb benchmark","date_created": "2017/09/01"},"licenses": [{"url": '
            '"http://creativecommons.org/licenses/by-nc-sa/2.0/","id": 1,"name": "Attribution-NonCommercial-'
            'ShareAlike License"}],"images": ['
        )
        f.write(
            ",".join(
                f'{{"license": 1,"file_name": "{name}","coco_url": "http://images.cocodataset.org/{split}/{name}",'
                f'"height": {sizes[i][1]},"width": {sizes[i][0]},"date_captured": "2013-11-14 11:18:45",'
                f'"flickr_url": "http://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg","id": {i}}}'
                for i, name in zip(image_ids, names)
            )
        )
        f.write('],"annotations": [')
        batch = []
        for k in range(n_annotations):
            image_id = image_ids[rng.randrange(n_images)]
            w, h = sizes[image_id]
            crowd = rng.random() < 0.01
            x, y = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
            bw, bh = rng.uniform(1, w - x), rng.uniform(1, h - y)
            batch.append(
                f'{{"segmentation": {rng.choice(rles) if crowd else rng.choice(polygons)},"area": {bw * bh * 0.7!r},'
                f'"iscrowd": {int(crowd)},"image_id": {image_id},"bbox": [{x:.2f},{y:.2f},{bw:.2f},{bh:.2f}],'
                f'"category_id": {rng.choice(_CATEGORY_IDS)},"id": {k + 1}}}'
            )
            if len(batch) == 10_000 or k == n_annotations - 1:
                f.write(("," if k >= len(batch) else "") + ",".join(batch))
                batch = []
        categories = ",".join(f'{{"supercategory": "thing","id": {c},"name": "class{c}"}}' for c in _CATEGORY_IDS)
        f.write(f'],"categories": [{categories}]}}')
    return names


def prepare(workdir: Path) -> Path:
    """The synthetic COCO directory under ``workdir``, generated unless a complete one of this version is there."""
    coco = workdir / "coco"
    stamp = coco / "GENERATED"
    if stamp.is_file() and stamp.read_text() == _GENERATOR_VERSION:
        return coco
    shutil.rmtree(coco, ignore_errors=True)
    (coco / "annotations").mkdir(parents=True)
    for split, n_images, n_annotations, seed in (
        ("train2017", TRAIN_IMAGES, TRAIN_ANNOTATIONS, 1),
        ("val2017", VAL_IMAGES, VAL_ANNOTATIONS, 2),
    ):
        t = time.perf_counter()
        names = write_synthetic_coco(coco / f"annotations/instances_{split}.json", split, n_images, n_annotations, seed)
        (coco / split).mkdir()
        for name in names:
            (coco / split / name).touch()
        print(f"generated {split}: {len(names)} images in {time.perf_counter() - t:.1f} s", flush=True)
    stamp.write_text(_GENERATOR_VERSION)
    return coco


def child_json_load(coco: Path) -> dict:
    t = time.perf_counter()
    with open(coco / "annotations/instances_train2017.json", encoding="utf-8") as f:
        data = json.load(f)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "annotations": len(data["annotations"])}


def child_build(coco: Path, out: Path) -> dict:
    """Build into ``out``, which must not exist yet."""
    from cawb.coco.subset import SubsetOptions, build_coco_subset

    t = time.perf_counter()
    report = build_coco_subset(SubsetOptions(coco_dir=coco, out_dir=out, progress=False))
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "boxes": sum(s.boxes for s in report.splits.values())}


def child_read(coco: Path) -> dict:
    from cawb.coco.classes import coco_classes
    from cawb.coco.instances import read_instances
    from cawb.coco.subset import rank_image_ids

    category_ids = coco_classes().category_ids
    t = time.perf_counter()
    data = read_instances(
        coco / "annotations/instances_train2017.json",
        lambda images, annotated: rank_image_ids(images, 0)[:10_000],
        want_annotated=False,
        category_ids=category_ids,
        progress=False,
    )
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "annotations": sum(len(pairs) for pairs in data.annotations.values())}


def run_child(kind: str, workdir: Path, out: Path) -> dict:
    """Run one measurement in a fresh interpreter; add its peak RSS in MB (from the kernel, via wait4)."""
    cmd = [sys.executable, __file__, "--child", kind, "--workdir", str(workdir), "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, "YOLO_OFFLINE": "1"})
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    process_seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed with exit code {proc.returncode}")
    result = json.loads(stdout)
    result["peak_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["process_seconds"] = process_seconds
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/cawb-coco-bench"), help="where to generate data")
    p.add_argument("--repeat", type=int, default=1, help="measurements of each side, interleaved; medians used")
    p.add_argument("--keep", action="store_true", help="keep --workdir (the synthetic files are reused next run)")
    p.add_argument("--child", choices=("json", "build", "read"), help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    coco = args.workdir / "coco"
    if args.child:
        if args.child == "json":
            result = child_json_load(coco)
        elif args.child == "build":
            result = child_build(coco, args.out)
        else:
            result = child_read(coco)
        print(json.dumps(result))
        return
    try:
        prepare(args.workdir)
        loads, builds, reads = [], [], []
        for k in range(args.repeat):
            # A fresh output directory per run, all deleted at the end: deleting one between runs makes the
            # file system (ext4 with discard here) slow to create files for seconds afterwards.
            out = args.workdir / f"out-{os.getpid()}-{k}"
            os.sync()  # flush earlier writes (generated data, previous run) so they are not charged to this run
            loads.append(run_child("json", args.workdir, out))
            builds.append(run_child("build", args.workdir, out))
            reads.append(run_child("read", args.workdir, out))
            for kind, r in (("json.load", loads[-1]), ("build", builds[-1]), ("read", reads[-1])):
                print(
                    f"{kind:9s} {r['seconds']:6.2f} s  peak {r['peak_mb']:5.0f} MB"
                    f"  (whole child process, interpreter start and imports included: {r['process_seconds']:.2f} s)",
                    flush=True,
                )
        size_mb = (coco / "annotations/instances_train2017.json").stat().st_size / 1e6
        load_s, build_s, read_s = (statistics.median(r["seconds"] for r in rs) for rs in (loads, builds, reads))
        load_mb, build_mb, read_mb = (statistics.median(r["peak_mb"] for r in rs) for rs in (loads, builds, reads))
        print(f"train annotation file: {size_mb:.0f} MB, {TRAIN_IMAGES} images, {TRAIN_ANNOTATIONS} annotations")
        print(f"json.load: {load_s:.2f} s, peak {load_mb:.0f} MB")
        print(f"build 10k/1k: {build_s:.2f} s, peak {build_mb:.0f} MB")
        print(f"time ratio   {build_s / load_s:.3f}  (goal <= 0.5)")
        print(f"memory ratio {build_mb / load_mb:.3f}  (goal <= 0.25)")
        print(f"read train2017 alone: {read_s:.2f} s, peak {read_mb:.0f} MB")
        print(f"read / json.load: time {read_s / load_s:.3f}, memory {read_mb / load_mb:.3f}")
    finally:
        for out in args.workdir.glob("out-*"):
            shutil.rmtree(out, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
