"""``train_cawb.py`` (installed: ``cawb-train``): YOLOv5-style flags in front of :func:`cawb.training.train.train`.

Flags use YOLOv5's names (``--batch-size``, ``--img``, ``--cfg``, ``--hyp``) and the seed code's underscore
spellings (``--cawb_steps``); any other ultralytics setting is ``key=value``. Precedence: command line > hyp file >
defaults. Bad input exits with status 2 and one line; Ctrl-C prints the ``--resume`` command.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Sequence

from cawb.cli.common import add_version_flag, bundled_data_help, bundled_hyp_help, run_cli
from cawb.cli.parsing import OneLineErrorParser
from cawb.schedule import EPOCH_SCALE_MODES
from cawb.training.config import ARTICLE_DEFAULTS, EMBEDDED_DEFAULTS, plan_run  # light: torch loads when it trains
from cawb.training.train import train
from cawb.utils.errors import HypError
from cawb.yolov5.sources import BUNDLED_MODELS

__all__ = ["batch_size", "build_parser", "key_value", "main", "options_from_args"]


def _number(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return int(value) if value.is_integer() else value


def batch_size(text: str) -> int | float:
    """argparse type of ``--batch-size``: an integer (-1 for auto batch), or a fraction of GPU memory."""
    return _number(text)  # integral values come back as int, as ultralytics expects a batch count


def key_value(text: str) -> tuple[str, Any]:
    """argparse type of a ``key=value`` setting: the value is read as YAML (``amp=False`` gives False, ``lr0=``
    None). A value that is not YAML (``cawb_steps=[2,``) is refused in one line."""
    from cawb.utils.user_files import UserFileError, parse_yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    try:
        return key, parse_yaml(value, f"{key}={value}") if value else None
    except UserFileError as error:
        raise argparse.ArgumentTypeError(str(error).replace(" line 1:", ":")) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``train_cawb.py`` command line (YOLOv5-style flags; ``--cawb_steps`` spellings accepted too)."""
    parser = OneLineErrorParser(
        description="Train YOLOv5 with ultralytics and a CAWB learning-rate schedule (cosine annealing with warm "
        "booting: restarts at chosen epochs). With --data, the defaults are the CAWB article's: YOLOv5s of release "
        "v5.0 (yolov5s-v5.0.yaml, anchor-based) from scratch, 640 px, batch 16. With no --data, trains an offline "
        "demo on a generated shapes dataset (ultralytics' yolov5n, 128 px, CPU) in ./datasets/shapes; results go to "
        "./runs/train.",
        epilog="Precedence: command line > hyp file > defaults. Any other ultralytics setting can be given as "
        "key=value (e.g. amp=False cache=ram) or in the hyp file. Examples:\n"
        "  cawb-train                                        (python train_cawb.py in a clone)\n"
        "  cawb-train --data coco10k --cawb-steps 30 80 --device 0\n"
        "  cawb-train --data my.yaml --hyp scratch-cos --epochs 100\n"
        "  cawb-train --cfg yolov5n-v5.0.yaml                the demo on v5.0's network at nano size\n"
        "  cawb-train --resume runs/train/exp/weights/last.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("data and model")
    run.add_argument("--data", help=f"dataset yaml (ultralytics format): {bundled_data_help()}. Default: shapes, the "
                     "offline demo")
    run.add_argument("--cfg", help="model yaml, built from scratch: classic anchor-based YOLOv5 of releases v5.0 "
                     f"and v7.0, {', '.join(BUNDLED_MODELS)} (yolov5n-v5.0 is a CPU-sized convenience, not part of "
                     "v5.0), ultralytics' own yolov5n.yaml, yolov5s.yaml, ... (anchor-free), or a path. Default: "
                     f"{ARTICLE_DEFAULTS['cfg']}; {EMBEDDED_DEFAULTS['cfg']} for the demo")
    run.add_argument("--weights", help="initial weights .pt on disk (optional; nothing is downloaded): an "
                     "ultralytics checkpoint, or one written by the YOLOv5 repository (v5.0-v7.0), imported")
    run.add_argument("--hyp", help=f"hyp YAML, ultralytics keys plus cawb_* keys: {bundled_hyp_help()} (default: "
                     "scratch-cawb; shapes-cawb for the demo)")

    loop = parser.add_argument_group("training")
    loop.add_argument("--epochs", type=int, help="total epochs (default: the hyp file's 'epochs')")
    loop.add_argument("--batch-size", "--batch", dest="batch", type=batch_size,
                      help="total batch size over all GPUs; -1 for ultralytics' auto batch (default: 16)")
    loop.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int, help="train/val image size in pixels "
                      "(default: 640; 128 for the demo)")
    loop.add_argument("--device", help="cuda device(s), e.g. 0 or 0,1 (multi-GPU DDP), or cpu (default: auto)")
    loop.add_argument("--workers", type=int, help="dataloader workers per process (default: 8)")
    loop.add_argument("--seed", type=int, help="global training seed (default: 0)")
    loop.add_argument("--project", help="save to project/name, relative to the working directory (default: runs/train)")
    loop.add_argument("--name", help="save to project/name (default: exp; shapes for the demo)")
    loop.add_argument("--exist-ok", "--exist_ok", dest="exist_ok", action="store_true",
                      help="train in project/name even if it exists, instead of the next free name (exp-2, exp-3, "
                      "... as ultralytics numbers runs); refused when it holds a run (weights, results.csv), which "
                      "training there would overwrite")
    loop.add_argument("--resume", nargs="?", const=True, default=None, metavar="LAST_PT",
                      help="continue an interrupted run from its last.pt (alone: the most recent run); the "
                      "schedule and every setting come from the checkpoint")

    sched = parser.add_argument_group("learning-rate schedule")
    sched.add_argument("--scheduler", choices=("cos", "cawb"),
                       help="cawb: CAWB; cos: ultralytics' stock schedule (the hyp file's cos_lr). Default: the hyp "
                       "file's 'cawb' key; any --cawb-* flag implies cawb")
    sched.add_argument("--cawb-steps", "--cawb_steps", dest="cawb_steps", nargs="+", type=_number, metavar="EPOCH",
                       help="restart epochs, e.g. 30 80: a new cycle starts after each")
    sched.add_argument("--cawb-step-scale", "--cawb_step_scale", dest="cawb_step_scale", type=float, metavar="G",
                       help="each restart multiplies the peak lr by G (> 0)")
    sched.add_argument("--cawb-epoch-scale", "--cawb_epoch_scale", dest="cawb_epoch_scale", type=float, metavar="K",
                       help="a non-final cycle anneals over a period K times its length (stretch) or K epochs "
                       "longer (extend), so it need not reach the bottom before the next restart (> 0)")
    sched.add_argument("--cawb-epoch-scale-mode", "--cawb_epoch_scale_mode", dest="cawb_epoch_scale_mode",
                       choices=EPOCH_SCALE_MODES, help="stretch (the article's curves) or extend (the reference code)")
    sched.add_argument("--cawb-lf", "--cawb_lf", dest="cawb_lf", metavar="LF",
                       help="decay within a cycle: cos, linear, or an import path package.module:function(x, period)")
    sched.add_argument("--cawb-lf-min", "--cawb_lf_min", dest="cawb_lf_min", type=float, metavar="M",
                       help="where cos/linear end, as a fraction of the cycle's peak, in [0, 1]")
    parser.add_argument("overrides", nargs="*", type=key_value, metavar="key=value",
                        help="any other ultralytics training setting, e.g. amp=False patience=50")
    return add_version_flag(parser)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user actually gave (argparse defaults are all None/False), as train() keywords."""
    options = {key: value for key, value in vars(args).items()
               if key != "overrides" and value is not None and value is not False}
    flags = set(options)
    for key, value in args.overrides:
        if key in options:
            twice = f"as a flag and as {key}=..." if key in flags else f"as {key}=... twice"
            raise HypError(f"{key} is given twice: {twice}")
        options[key] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """``train_cawb.py``: parse, plan, train, print where the results are and the final mAPs. Exit status as
    :func:`cawb.cli.common.run_cli` says (2: bad input, 130: interrupted, with the ``--resume`` command)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f"python {parser.prog}" if parser.prog.endswith(".py") else parser.prog  # as the user ran it

    def work() -> int:
        result = train(plan_run(**options_from_args(args)))
        fmt = lambda value: "n/a" if value is None else f"{value:.4f}"  # noqa: E731
        for note in result.notes:  # said at the start too, but long since scrolled away
            print(f"warning: {note}", file=sys.stderr)
        print(f"\nresults: {result.save_dir}\nweights: {result.weights}\nmAP50: {fmt(result.map50)}  mAP50-95: "
              f"{fmt(result.map50_95)}  (ultralytics validator, {result.weights.name})")
        return 0

    def interrupted(error) -> str:
        last = getattr(error, "last", None)
        if last:
            return f"interrupted: finished epochs are saved; continue with\n  {command} --resume {last}"
        return "interrupted before the first epoch finished: nothing to resume"

    return run_cli(work, interrupted=interrupted)
