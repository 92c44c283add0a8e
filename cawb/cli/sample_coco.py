"""Build a seeded random COCO2017 subset (default: 10,000 train / 1,000 val
images) for YOLO training and pycocotools evaluation. See docs/COCO_SUBSETS.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from cawb.cli.common import add_version_flag, run_cli
from cawb.cli.parsing import OneLineErrorParser
from cawb.coco.download import DEFAULT_BASE_URL, RetryPolicy
from cawb.coco.subset import SubsetOptions, build_coco_subset

EXAMPLES = """\
examples (python scripts/sample_coco.py in a clone):
  # from a local COCO2017 copy
  cawb-sample-coco --coco /path/to/coco --out datasets/coco10k
  # without one: fetch the annotations and only the drawn images into --coco
  cawb-sample-coco --coco datasets/coco --out datasets/coco10k --download

Then train with --data datasets/coco10k/dataset.yaml (or --data coco10k, the bundled yaml, which reads
./datasets/coco10k).
Errors print one line 'error: ...' and exit with status 2, before anything is fetched, parsed or written.
Ctrl-C (exit status 130) keeps every finished file and download: rerun the same command to resume."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineErrorParser(description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--coco",
        type=Path,
        required=True,
        metavar="DIR",
        help="COCO2017 directory: annotations/instances_{train,val}2017.json, train2017/, val2017/",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("datasets/coco10k"),
        metavar="DIR",
        help="output directory: images/, labels/, annotations/, dataset.yaml, manifest.json (default: %(default)s)",
    )
    p.add_argument("--train", type=int, default=10_000, metavar="N", help="train images (default: %(default)s)")
    p.add_argument("--val", type=int, default=1_000, metavar="N", help="val images (default: %(default)s)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the draw; the same seed and files give the same output bytes (default: %(default)s)",
    )
    p.add_argument(
        "--val-from",
        choices=("val", "train"),
        default="val",
        help="draw val from val2017, or from train2017 disjoint from the train draw (default: %(default)s)",
    )
    p.add_argument(
        "--skip-empty",
        action="store_true",
        help="draw only images with at least one annotation (default: any image, background images included)",
    )
    p.add_argument("--copy", action="store_true", help="copy the images into --out (default: symlink them)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an --out that holds a subset built with other settings (deletes only what a build writes), or "
        "build into a directory of other files, which are left alone (refused if one is named like a build's output)",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="build without drawn images absent from --coco, counted in the summary (default: fail)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch what --coco lacks: the annotations archive, then only the drawn images (resumable)",
    )
    p.add_argument(
        "--base-url",
        default=DEFAULT_BASE_URL,
        metavar="URL",
        help="COCO mirror for --download, serving annotations/annotations_trainval2017.zip, train2017/ and "
        "val2017/ (default: %(default)s)",
    )
    p.add_argument(
        "--workers", type=int, default=8, metavar="N", help="concurrent image downloads (default: %(default)s)"
    )
    p.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help="retries per download after 5xx, dropped connections, truncated bodies (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return add_version_flag(p).parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse, build the subset, print its counts. Exit status as :func:`cawb.cli.common.run_cli` says: 2 bad input,
    1 a failed write (the disk filled up), 130 interrupted; a rerun of the same command resumes."""
    args = parse_args(argv)

    def work() -> int:
        report = build_coco_subset(SubsetOptions(
            coco_dir=args.coco,
            out_dir=args.out,
            train=args.train,
            val=args.val,
            seed=args.seed,
            val_from=args.val_from,
            skip_empty=args.skip_empty,
            copy=args.copy,
            force=args.force,
            allow_missing=args.allow_missing,
            download=args.download,
            base_url=args.base_url,
            workers=args.workers,
            retry=RetryPolicy(retries=args.retries),
            progress=not args.quiet,
        ))
        for split, s in report.splits.items():
            print(
                f"{split}: {s.images} images ({s.background_images} without boxes, {s.missing} missing), "
                f"{s.annotations} annotations ({s.crowd} crowd), {s.boxes} YOLO boxes ({s.dropped_boxes} dropped)"
            )
        if report.downloaded:
            print(f"downloaded {report.downloaded} images")
        print(f"dataset yaml: {report.dataset_yaml}")
        return 0

    return run_cli(work, interrupted=lambda _: "interrupted: finished files and downloads are kept; rerun the same "
                   "command to resume",
                   disk_hint="the build stopped there and kept what it finished: fix it and rerun the same command "
                   "to resume", uses_ultralytics=False)
