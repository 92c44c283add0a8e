"""Train cos and CAWB arms over several seeds and rebuild the article's mAP table with spreads.

    cawb-compare --preset cpu                    # offline: shapes data, yolov5n-v5.0, CPU
    cawb-compare --preset article                # the article: coco10k, yolov5s-v5.0, 150 epochs, GPU 0
    cawb-compare --preset article --device 0,1,2,3 --jobs 4             # 4 runs at once, a GPU each
    cawb-compare --preset article --shard $SLURM_ARRAY_TASK_ID/6        # a Slurm array of 6

(``python scripts/compare.py`` in a clone.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cawb.cli.common import add_version_flag, bundled_data_help, bundled_hyp_help, run_cli
from cawb.cli.parsing import OneLineErrorParser
from cawb.cli.train import batch_size, key_value
from cawb.experiment.compare import (  # no torch/ultralytics import: --help stays fast
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_PRESET,
    FROM_HYP,
    PRESETS,
)
from cawb.experiment.compare.report import ARTICLE_EFFECT


def _preset_values(name: str) -> str:
    values = PRESETS[name]

    def short(path: Path, prefix: str = "") -> str:  # presets hold the bundled files' paths: show their short names
        return Path(path).stem.removeprefix(prefix)

    settings = {**values, "data": short(values["data"]), "arms": " ".join(short(arm, "hyp.") for arm in values["arms"]),
                "seeds": " ".join(map(str, values["seeds"]))}
    return f"{name}:\n    " + ", ".join(f"{key} {value}" for key, value in settings.items())


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        description="Train every (arm, seed) with the trainer train_cawb.py uses, evaluate each run's last.pt and\n"
        "best.pt with pycocotools, and write table.md, table.csv, summary.json, lr.png and map.png in --project:\n"
        "per arm mAP_0.5 and mAP_0.5:0.95 as mean +- std over seeds, the paired CAWB - cos difference with its\n"
        "spread and a verdict, how many seeds would tell the article's difference from zero, and the article's\n"
        "values beside them. Rerunning the same command skips finished runs and resumes interrupted ones.\n\n"
        "Runs at once (--jobs N): each run trains in its own process with its log in <run dir>/compare.log; the\n"
        "terminal shows one live view of all runs (epoch, last mAP, ETA). --device is dealt out: --device 0,1,2,3\n"
        "--jobs 4 gives each run a GPU, --jobs 2 two (DDP inside the run), --jobs 8 two runs per GPU; --device cpu\n"
        "--jobs 2 splits the CPU threads. Ctrl-C stops every run cleanly; rerun the same command to resume.\n\n"
        "Several processes or machines on one --project (shared disk): --shard K/N gives this process the K-th of\n"
        "N fixed parts of the plan; a run is claimed with a lock file (host, pid) in <project>/locks, taken over\n"
        "when its process is gone (same host) or it was not refreshed for --lock-timeout seconds. The process that\n"
        "finishes the last run writes the report; --report-only writes it from what has finished, training nothing.",
        epilog="Presets (flags given with one override its values; without --preset, "
        f"'{DEFAULT_PRESET}' fills in what the flags leave out, but see below):\n  "
        + "\n  ".join(_preset_values(name) for name in PRESETS) + "\n\n"
        f"Without --preset, {', '.join(FROM_HYP)} not given come from the arms' hyp files (they must agree),\n"
        f"else from the '{DEFAULT_PRESET}' preset; the plan line says where each came from.\n\n"
        "Examples:\n"
        "  cawb-compare --preset cpu                       (python scripts/compare.py in a clone)\n"
        "  cawb-compare --preset cpu --epochs 3 --seeds 0\n"
        "  cawb-compare --preset cpu --jobs 2\n"
        "  cawb-compare --preset article --device 0,1,2,3 --jobs 4\n"
        "  cawb-compare --preset article --shard 2/6 --jobs 2   # one task of a Slurm array of 6\n"
        "  cawb-compare --preset article --report-only\n"
        "  cawb-compare --preset article --device 0 --batch-size 32 cache=ram\n"
        "  cawb-compare --data my.yaml --epochs 100 --arms scratch-cos my-cawb.yaml --seeds 0 1 2\n\n"
        "Exit status: 0 this process's runs finished, 1 a run failed (the others are reported; with --report-only:\n"
        "a planned run is missing from the report), 2 bad input (nothing ran), 130 interrupted by Ctrl-C or\n"
        "SIGTERM (rerun to continue). See docs/COMPARE.md.",
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
                        help="epochs of every run (default: the preset's; without --preset the arms' hyp 'epochs', "
                        "which must agree). A CAWB arm whose file has other epochs gets its restarts scaled to this "
                        "count (printed, and in summary.json)")
    parser.add_argument("--cfg", help="model yaml built from scratch: YOLOv5 v5.0's yolov5s-v5.0.yaml (the article's), "
                        "yolov5n-v5.0.yaml, ..., ultralytics' anchor-free yolov5s.yaml, ..., a model of another task "
                        "(yolo11n-seg.yaml, -pose, -obb, -cls: the table then reports the task's numbers from "
                        "ultralytics' validator; with --preset cpu it trains on that task's shapes data), or a path")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=batch_size,
                        help="total batch size; -1 for ultralytics' auto batch (lr.png then drawn per epoch). "
                        "Default: the preset's; without --preset the arms' hyp 'batch', else the article preset's")
    parser.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int,
                        help="train, validation and evaluation image size in pixels (default as for --batch-size)")
    parser.add_argument("--device", help="cuda device(s), e.g. 0 or 0,1, or cpu; with --jobs, dealt out to the runs")
    parser.add_argument("--workers", type=int, help="dataloader workers per process (default: train_cawb's 8)")
    parser.add_argument("--project", help="output directory: the report files, and the runs under <project>/runs")
    parser.add_argument("--exist-ok", "--exist_ok", dest="exist_ok", action="store_true",
                        help="replace an existing report in --project (default: write the new one beside it as "
                        "table-2.md, summary-2.json, ...). Runs are reused either way")
    parser.add_argument("--jobs", "-j", type=int, default=1,
                        help="runs at once, each in its own process (default 1: one after another in this process, "
                        "ultralytics' log in the terminal)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads per run on --device cpu (default: the CPUs split between the --jobs runs, "
                        "at most 8; with --jobs 1 ultralytics' own min(8, CPUs - 1)). On the CPU results repeat bit "
                        "for bit only with the same thread count")
    parser.add_argument("--shard", metavar="K/N",
                        help="take only the K-th of N fixed parts of the plan (1-based), for N processes or machines "
                        "sharing --project, e.g. --shard $SLURM_ARRAY_TASK_ID/6")
    parser.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
                        help="a run's lock not refreshed for this long (its machine died) may be taken over "
                        "(default %(default)g; a lock whose process is gone on this host is taken over at once)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the runs finished so far, listing the missing ones; train nothing")
    parser.add_argument("--effect", nargs=2, type=float, metavar=("MAP50", "MAP50_95"),
                        help="the differences the 'how many seeds' figures are computed for (default: the article's "
                        f"{ARTICLE_EFFECT['map50']:+g} mAP_0.5 and {ARTICLE_EFFECT['map50_95']:+g} mAP_0.5:0.95; "
                        "for a model of another task, its two numbers: mask mAPs, ..., top-1 and top-5 accuracy)")
    parser.add_argument("overrides", nargs="*", type=key_value, metavar="key=value",
                        help="any other ultralytics training setting for every run, e.g. cache=ram amp=False "
                        "(before --arms and --seeds, which take every value that follows them)")
    return add_version_flag(parser)


def main(argv: list[str] | None = None) -> int:
    """Parse, run the comparison, print the table. Exit status as :func:`cawb.cli.common.run_cli` says; 1 also when
    a run failed (with --report-only: when a planned run is missing)."""
    args = build_parser().parse_args(argv)
    options = {key: value for key, value in vars(args).items() if value is not None and key not in ("overrides",
                                                                                                     "effect")}
    options["overrides"] = dict(args.overrides)
    if args.effect is not None:
        options["effect"] = dict(zip(ARTICLE_EFFECT, args.effect))

    def work() -> int:
        from cawb.experiment.compare import compare

        result = compare(**options)
        if result.summary is not None and result.report is not None:
            print("\n" + result.report.table_md.read_text(), end="")
        return result.exit_code

    return run_cli(work)
