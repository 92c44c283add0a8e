"""Evaluate trained weights on a dataset's val split with pycocotools and ultralytics; print both mAPs.

Example:
    python scripts/evaluate.py --weights runs/detect/train/weights/best.pt --data data/shapes.yaml --imgsz 128
"""

import argparse
import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is imported: no online checks

from cawb.experiment.evaluate import evaluate_coco  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="trained checkpoint (.pt)")
    parser.add_argument("--data", required=True, help="dataset yaml with val_json and category_ids")
    parser.add_argument("--imgsz", type=int, required=True, help="inference size in pixels, as in training")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="'cpu', '0', ...")
    parser.add_argument("--out", default="runs/evaluate", help="output directory (predictions.json)")
    args = parser.parse_args()

    try:
        result = evaluate_coco(
            args.weights, args.data, imgsz=args.imgsz, batch=args.batch, device=args.device, save_dir=args.out
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:  # edge validation: one line, no traceback
        raise SystemExit(f"evaluate.py: {e}") from e
    print(result["summary"], end="")
    print(f"pycocotools  mAP50 {result['map50']:.4f}  mAP50-95 {result['map50_95']:.4f}")
    print(f"ultralytics  mAP50 {result['ultralytics_map50']:.4f}  mAP50-95 {result['ultralytics_map50_95']:.4f}")
    print(f"predictions: {result['predictions']}")


if __name__ == "__main__":
    main()
