"""``scripts/tune.py`` (installed: ``cawb-tune``): an Optuna search over the CAWB restarts and settings that writes
a ready hyp file. The library is :mod:`cawb.experiment.tune`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from cawb.cli.common import add_version_flag, bundled_data_help, bundled_hyp_help, run_cli
from cawb.cli.parsing import OneLineErrorParser
from cawb.cli.train import batch_size, key_value
from cawb.experiment.tune_report import METRICS
from cawb.experiment.tune_settings import (
    DEFAULT_PROJECT,
    DEFAULT_PRUNE_AFTER,
    DEFAULT_RESTART_GRACE,
    DEFAULT_STUDY,
    PRESETS,
)
from cawb.experiment.tune_space import DEFAULT_SPACE, SearchSpace
from cawb.training.config import ARTICLE_DEFAULTS

__all__ = ["build_parser", "main"]


def _preset_values(name: str) -> str:
    def short(value):  # presets hold absolute paths of the bundled files: show their short names
        return Path(value).name.removesuffix(".yaml").removeprefix("hyp.") if isinstance(value, Path) else value

    return f"{name}:\n    " + ", ".join(f"{key} {short(value)}" for key, value in PRESETS[name].items())


def build_parser() -> argparse.ArgumentParser:
    """The ``scripts/tune.py`` command line."""
    space = "\n    ".join(SearchSpace(DEFAULT_SPACE).describe())
    parser = OneLineErrorParser(
        description="Search the CAWB learning-rate schedule for your data with Optuna: how many restarts (warm "
        "boots),\nwhere, how high (step_scale), how slowly each cycle anneals (epoch_scale), its floor (lf_min) "
        "and\nshape (lf). Every trial trains with the trainer train_cawb.py uses, from the base hyp file with the\n"
        "trial's values; it reports its metric after every epoch, and a median pruner stops trials that are\n"
        "clearly behind (never in the first --restart-grace epochs after one of its restarts, where the metric\n"
        "dips by design). The study lives in --storage: rerun the same command to continue it, or start the\n"
        "same command on several machines or GPUs sharing one database to search in parallel; together they\n"
        "stop at --trials finished (complete or pruned) trials. Writes best_hyp.yaml (ready for train_cawb.py\n"
        "--hyp), trials.csv, history.png, importance.png and lr-best.png in --project.",
        epilog="Default search space (--space FILE.yaml changes entries, fixes them (key: value) or adds\n"
        "ultralytics' numeric hyperparameters, e.g. lr0: {low: 0.001, high: 0.02, log: true}):\n    "
        f"{space}\n"
        "  Restart positions are drawn as fractions of the training after warmup, sorted, at least\n"
        "  restart_min_gap apart, then rounded to the epochs a run makes a restart at:\n"
        "  warmup_epochs < s < epochs - 1 (a restart shows from the epoch after it).\n\n"
        "Presets (flags given with one override its values):\n  "
        + "\n  ".join(_preset_values(name) for name in PRESETS) + "\n\n"
        "Examples (python scripts/tune.py in a clone):\n"
        "  cawb-tune --preset cpu --trials 4 --epochs 6      # offline: shapes data, nano model, CPU, minutes\n"
        "  cawb-tune --preset cpu --trials 6 --epochs 6      # the same study: two more trials\n"
        "  cawb-tune --data data/my.yaml --hyp scratch-cawb --epochs 100 --trials 40 \\\n"
        "      --device 0 --storage postgresql://user@db/optuna --study-name my-cawb\n"
        "  cawb-tune --data data/my.yaml --trials 30 --epochs 50 --space my-space.yaml lr0=0.02\n\n"
        "Exit status: 0 done, 1 no trial completed or too many failed in a row, 2 bad input (nothing ran),\n"
        "130 interrupted (the trial in progress does not count; rerun to continue). See the README section\n"
        "'Find the restarts for your data'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="named settings, listed below")
    study = parser.add_argument_group("the study")
    study.add_argument("--trials", type=int, help="the study's total of finished (complete or pruned) trials; a "
                       "rerun or another worker continues toward it (required without a preset)")
    study.add_argument("--metric", choices=list(METRICS),
                       help="what trials maximise: " + "; ".join(f"{k}: {v}" for k, v in METRICS.items()) +
                       ". A trial's value is that of best.pt, the weights ultralytics keeps (default: fitness)")
    study.add_argument("--space", help="search space YAML: changes to the default space below")
    study.add_argument("--storage", help="Optuna storage URL shared by the workers, e.g. sqlite:///tune.db or "
                       "postgresql://user@host/db (default: sqlite:///<project>/study.db)")
    study.add_argument("--study-name", "--study_name", dest="study_name",
                       help=f"the study in --storage (default: {DEFAULT_STUDY})")
    study.add_argument("--project", help=f"output directory, and the trials under <project>/trials (default: "
                       f"{DEFAULT_PROJECT}); one study per directory")
    study.add_argument("--prune", action=argparse.BooleanOptionalAction, default=None,
                       help="stop trials behind the median of earlier ones at the same epoch (default: --prune)")
    study.add_argument("--prune-after", "--prune_after", dest="prune_after", type=float, metavar="FRACTION",
                       help="no pruning before this fraction of the epochs: trained from scratch, a detector's early "
                       f"mAP says little about its final one (default: {DEFAULT_PRUNE_AFTER})")
    study.add_argument("--restart-grace", "--restart_grace", dest="restart_grace", type=int, metavar="EPOCHS",
                       help=f"epochs after each restart (and after warmup) in which a trial is never pruned "
                       f"(default: {DEFAULT_RESTART_GRACE})")
    study.add_argument("--seed", type=int, help="seeds the sampler (trial n draws with seed + n) and every "
                       "trial's training (default: 0)")

    run = parser.add_argument_group("each trial's training (as train_cawb.py)")
    run.add_argument("--data", help=f"dataset yaml (ultralytics format): {bundled_data_help()}")
    run.add_argument("--hyp", help=f"base hyp YAML; each trial sets its drawn values on top: {bundled_hyp_help()} "
                     "(default: scratch-cawb)")
    run.add_argument("--cfg", help=f"model yaml built from scratch, as train_cawb.py --cfg (default: "
                     f"{ARTICLE_DEFAULTS['cfg']})")
    run.add_argument("--epochs", type=int, help="epochs of every trial (default: the base hyp's 'epochs')")
    run.add_argument("--batch-size", "--batch", dest="batch", type=batch_size, help="batch size (default: 16)")
    run.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int, help="image size in pixels "
                     "(default: 640)")
    run.add_argument("--device", help="one cuda device, e.g. 0, or cpu; for several GPUs start one worker per GPU")
    run.add_argument("--workers", type=int, help="dataloader workers (default: 8)")
    parser.add_argument("overrides", nargs="*", type=key_value, metavar="key=value",
                        help="any other ultralytics setting for every trial, e.g. amp=False cache=ram (per-trial "
                        "plots are off unless plots=True)")
    return add_version_flag(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the study, print the summary. Exit status as :func:`cawb.cli.common.run_cli` says; 1 also when no
    trial completed."""
    args = build_parser().parse_args(argv)
    options = {key: value for key, value in vars(args).items() if value is not None and key != "overrides"}
    options["overrides"] = dict(args.overrides)

    def work() -> int:
        from cawb.experiment.tune import tune

        result = tune(**options)
        print("\n" + "\n".join(result.summary))
        return result.exit_code

    return run_cli(work, interrupted=lambda error: str(error) if error else
                   "interrupted before any trial started; nothing was trained")
