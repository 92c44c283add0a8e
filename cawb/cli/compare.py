"""Train cos and CAWB arms over several seeds and rebuild the article's mAP table with spreads.

    cawb-compare --preset cpu                    # offline: shapes data, yolov5n-v5.0, CPU
    cawb-compare --preset article                # the article: coco10k, yolov5s-v5.0, 150 epochs, GPU 0

(``python scripts/compare.py`` in a clone.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cawb.cli.common import add_version_flag, bundled_data_help, bundled_hyp_help
from cawb.cli.train import batch_size, key_value
from cawb.experiment.compare import DEFAULT_PRESET, PRESETS  # no torch/ultralytics import: --help stays fast


def _preset_values(name: str) -> str:
    values = PRESETS[name]

    def short(path: Path, prefix: str = "") -> str:  # presets hold the bundled files' paths: show their short names
        return Path(path).stem.removeprefix(prefix)

    settings = {**values, "data": short(values["data"]), "arms": " ".join(short(arm, "hyp.") for arm in values["arms"]),
                "seeds": " ".join(map(str, values["seeds"]))}
    return f"{name}:\n    " + ", ".join(f"{key} {value}" for key, value in settings.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train every (arm, seed) with the trainer train_cawb.py uses, evaluate each run's last.pt and\n"
        "best.pt with pycocotools, and write table.md, table.csv, summary.json, lr.png and map.png in --project:\n"
        "per arm mAP_0.5 and mAP_0.5:0.95 as mean +- std over seeds, the paired CAWB - cos difference with its\n"
        "spread and a verdict, and the article's values beside them. Rerunning the same command skips finished\n"
        "runs and resumes interrupted ones.",
        epilog="Presets (flags given with one override its values; without --preset the flags override "
        f"'{DEFAULT_PRESET}'):\n  " + "\n  ".join(_preset_values(name) for name in PRESETS) + "\n\n"
        "Examples:\n"
        "  cawb-compare --preset cpu                       (python scripts/compare.py in a clone)\n"
        "  cawb-compare --preset cpu --epochs 3 --seeds 0\n"
        "  cawb-compare --preset article --device 0 --batch-size 32 cache=ram\n"
        "  cawb-compare --data my.yaml --epochs 100 --arms scratch-cos my-cawb.yaml --seeds 0 1 2\n\n"
        "Exit status: 0 all runs finished, 1 a run failed (the others are reported), 2 bad input (nothing ran),\n"
        "130 interrupted (rerun to continue). See docs/COMPARE.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help=f"named settings, listed below (default: {DEFAULT_PRESET}, for flags not given)")
    parser.add_argument("--data", help="dataset yaml with val_json and category_ids (pycocotools needs them): "
                        f"{bundled_data_help()}")
    parser.add_argument("--arms", nargs="+", metavar="HYP",
                        help=f"hyp files, one per arm ({bundled_hyp_help()}); an arm is named by its file's stem. "
                        "With one cawb: false arm "
                        "and one cawb: true arm the difference is CAWB - cos, otherwise each arm minus the first")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="training seeds; every arm runs once per seed, and seed k of one arm is paired with "
                        "seed k of the other")
    parser.add_argument("--epochs", type=int,
                        help="epochs of every run (default: the arms' hyp 'epochs', which must agree). A CAWB arm "
                        "whose file has other epochs gets its restarts scaled to this count (printed, and in "
                        "summary.json)")
    parser.add_argument("--cfg", help="model yaml built from scratch: YOLOv5 v5.0's yolov5s-v5.0.yaml (the article's), "
                        "yolov5n-v5.0.yaml, ..., ultralytics' anchor-free yolov5s.yaml, ..., or a path")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=batch_size,
                        help="total batch size; -1 for ultralytics' auto batch (lr.png then drawn per epoch)")
    parser.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int,
                        help="train, validation and evaluation image size in pixels")
    parser.add_argument("--device", help="cuda device(s), e.g. 0 or 0,1, or cpu")
    parser.add_argument("--workers", type=int, help="dataloader workers per process (default: train_cawb's 8)")
    parser.add_argument("--project", help="output directory: the report files, and the runs under <project>/runs")
    parser.add_argument("--exist-ok", "--exist_ok", dest="exist_ok", action="store_true",
                        help="replace an existing report in --project (default: write the new one beside it as "
                        "table-2.md, summary-2.json, ...). Runs are reused either way")
    parser.add_argument("overrides", nargs="*", type=key_value, metavar="key=value",
                        help="any other ultralytics training setting for every run, e.g. cache=ram amp=False "
                        "(before --arms and --seeds, which take every value that follows them)")
    return add_version_flag(parser)


def main(argv: list[str] | None = None) -> int:
    """Parse, run the comparison, print the table. Exit 2 on bad input, 130 on Ctrl-C, 1 if a run failed."""
    args = build_parser().parse_args(argv)
    from cawb.experiment.compare import ComparisonInterrupted, compare

    options = {key: value for key, value in vars(args).items() if value is not None and key != "overrides"}
    options["overrides"] = dict(args.overrides)
    try:
        result = compare(**options)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ComparisonInterrupted as interrupted:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
    if result.summary is not None:
        print("\n" + result.plan.paths.table_md.read_text(), end="")
    return result.exit_code

