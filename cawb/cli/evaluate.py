"""Evaluate trained weights on a dataset's val split with pycocotools and ultralytics; print both mAPs.

Example (``python scripts/evaluate.py`` in a clone):
    cawb-evaluate --weights runs/train/shapes/weights/best.pt --data shapes --imgsz 128
"""

from __future__ import annotations

import argparse

from cawb.cli.common import add_version_flag, bundled_data_help, run_cli
from cawb.cli.parsing import OneLineErrorParser, int_at_least


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Bad input ends with one line 'error: ...' and exit status 2, before anything "
                                "is loaded or written.")
    parser.add_argument("--weights", required=True, help="trained ultralytics checkpoint (.pt): a run's last.pt or "
                        "best.pt")
    parser.add_argument("--data", required=True,
                        help=f"dataset yaml with val_json and category_ids: {bundled_data_help()}")
    parser.add_argument("--imgsz", type=int_at_least(32), required=True,
                        help="inference size in pixels, as in training (>= 32)")
    parser.add_argument("--batch", type=int_at_least(1), default=16, help="images per batch (>= 1; default: 16)")
    parser.add_argument("--device", default="cpu", help="'cpu', '0', ...")
    parser.add_argument("--out", default="runs/evaluate", help="output directory (predictions.json; default: "
                        "runs/evaluate)")
    return add_version_flag(parser)


def main(argv: list[str] | None = None) -> int:
    """Parse, evaluate, print both mAPs. Exit 2 on bad input (:func:`cawb.cli.common.run_cli`)."""
    args = build_parser().parse_args(argv)

    def work() -> int:
        from cawb.experiment.evaluate import evaluate_coco  # torch, ultralytics, pycocotools load once it runs
        from cawb.training.ultralytics_settings import check_device
        from cawb.utils.resources import resolve_data
        from cawb.utils.user_files import check_checkpoint_file, check_output_dir

        # evaluate_coco checks them too, naming them by its own argument names (weights, save_dir, device)
        check_checkpoint_file(args.weights, "--weights")
        check_output_dir(args.out, "--out")
        check_device(args.device)
        result = evaluate_coco(args.weights, resolve_data(args.data), imgsz=args.imgsz, batch=args.batch,
                               device=args.device, save_dir=args.out)
        print(result["summary"], end="")
        print(f"pycocotools  mAP50 {result['map50']:.4f}  mAP50-95 {result['map50_95']:.4f}")
        print(f"ultralytics  mAP50 {result['ultralytics_map50']:.4f}  mAP50-95 {result['ultralytics_map50_95']:.4f}")
        print(f"predictions: {result['predictions']}")
        return 0

    return run_cli(work)
