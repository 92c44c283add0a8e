"""Draw the learning-rate schedule a hyp YAML file describes, as ultralytics' trainer applies it.

Examples (``python scripts/plot_lr.py`` in a clone):
    cawb-plot-lr --hyp scratch-cawb                                   # writes runs/plot_lr/lr.png
    cawb-plot-lr --hyp scratch-cawb --compare scratch-cos --batches 157 --csv runs/plot_lr/lr.csv
    cawb-plot-lr --hyp scratch-cawb --cfg yolov5s-v5.0.yaml                  # as a v5.0 model trains with it
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cawb.cli.common import add_version_flag, bundled_hyp_help, run_cli
from cawb.cli.parsing import OneLineErrorParser, int_at_least

DEFAULT_OUT = Path("runs/plot_lr/lr.png")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        description=__doc__.split("\n\n")[0],
        epilog="The curve is the weights param group's lr (base lr0). With cawb: false the file's stock "
        "ultralytics schedule is drawn (one-cycle cosine 1 -> lrf with cos_lr, else linear). Restarts of the file "
        "that fall outside --epochs are named in a warning. Bad input (a hyp file, an lr setting ultralytics would "
        "refuse, an output place that cannot be written, more than 2,000,000 points per curve) ends with one line "
        "'error: ...' and exit status 2, before anything is written.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--hyp", required=True,
                        help=f"hyp YAML file (ultralytics keys + cawb_* keys): {bundled_hyp_help()}")
    parser.add_argument("--epochs", type=int_at_least(1),
                        help="total epochs (default: the file's 'epochs', else ultralytics' 100)")
    parser.add_argument(
        "--batches",
        type=int_at_least(1),
        help="batches per epoch: draw per iteration, including ultralytics' warmup ramp (default: one point per epoch)",
    )
    parser.add_argument("--compare",
                        help="a second hyp file (path or bundled name) drawn on the same axes (e.g. cos vs CAWB)")
    parser.add_argument("--cfg", help="the model the schedule is for (a yaml name or path, as train_cawb.py takes it): "
                        "its kind's defaults fill what the file leaves unset; a classic YOLOv5 model "
                        "(yolov5s-v5.0.yaml, yolov5s-v7.0.yaml) trains epoch e at the schedule's value for e - 1 "
                        "(lr_epoch_lag). Default: one of ultralytics' models")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write (runs/ is git-ignored)")
    parser.add_argument("--csv", type=Path, help="CSV to write for --hyp, header 'epoch,lr' (0-based epoch)")
    return add_version_flag(parser)


def _model_kind(cfg: str | None) -> str:
    """The kind of the model ``--cfg`` names (ultralytics' when not given), or a one-line error when no model yaml
    has that name or path."""
    from cawb.yolov5.kind import model_kind
    from cawb.yolov5.sources import KIND_ULTRALYTICS, resolve_model_yaml

    if cfg is None:
        return KIND_ULTRALYTICS
    if resolve_model_yaml(cfg) is None:
        from ultralytics.nn.tasks import yaml_model_load

        from cawb.utils.errors import InputFileNotFoundError

        try:
            yaml_model_load(cfg)  # as ultralytics resolves it: yolov5s.yaml is yolov5.yaml at scale 's'
        except (FileNotFoundError, AssertionError):  # AssertionError: ultralytics' check of the suffix
            raise InputFileNotFoundError(f"--cfg {cfg}: model yaml not found (e.g. yolov5s-v5.0.yaml, "
                                         "ultralytics' yolov5s.yaml, or a path)") from None
    return model_kind(cfg)


def main(argv: list[str] | None = None) -> int:
    """Parse, draw, say what was drawn. Exit 2 on bad input (:func:`cawb.cli.common.run_cli`)."""
    args = build_parser().parse_args(argv)

    def work() -> int:
        from cawb.training.lr_curve import plot_hyp_lr

        kind = _model_kind(args.cfg)
        curves = plot_hyp_lr(args.hyp, args.out, args.epochs, args.batches, args.compare, args.csv, kind=kind)
        for curve, path in zip(curves, [args.hyp, args.compare]):
            if curve.dropped_restart_epochs:
                restarts = ", ".join(f"{epoch:g}" for epoch in curve.dropped_restart_epochs)
                print(f"warning: {path}: restart epoch(s) {restarts} fall outside this {int(curve.epochs[-1]) + 1}-epoch "
                      "run and are not drawn (a restart shows from the epoch after it: only warmup_epochs < s < "
                      "epochs - 1 count)", file=sys.stderr)
        for curve in curves:
            print(f"{curve.label}: {len(curve.lrs)} points, lr {max(curve.lrs):.4g} max, {curve.lrs[-1]:.4g} last")
        print(f"plot: {args.out}" + (f"\ncsv: {args.csv}" if args.csv else ""))
        return 0

    return run_cli(work)
