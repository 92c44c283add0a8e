"""``train_cawb.py`` (installed: ``cawb-train``): YOLOv5-style flags in front of :func:`cawb.training.train.train`.

Flags use YOLOv5's names (``--batch-size``, ``--img``, ``--cfg``, ``--hyp``) and the seed code's underscore
spellings (``--cawb_steps``); any other ultralytics setting is ``key=value``. Every other flag of YOLOv5's v5.0 and
v7.0 ``train.py`` is an alias of the setting that does the same (``--noval`` is ``val=False``) or refused with what
to do instead, as :mod:`cawb.yolov5.train_flags` lists them. Precedence: command line > hyp file > defaults. Bad
input exits with status 2 and one line; Ctrl-C prints the ``--resume`` command.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

from cawb.cli.common import add_version_flag, bundled_data_help, bundled_hyp_help, run_cli
from cawb.cli.parsing import OneLineErrorParser
from cawb.schedule import EPOCH_SCALE_MODES
from cawb.training.config import ARTICLE_DEFAULTS, EMBEDDED_DEFAULTS, plan_run  # light: torch loads when it trains
from cawb.training.train import train
from cawb.utils.errors import HypError
from cawb.yolov5.sources import BUNDLED_MODELS
from cawb.yolov5.train_flags import ALIASES, REFUSED, RUN_OPTIONS, VALUE, FlagAlias, RefusedFlag

__all__ = ["CONSOLE_COMMAND", "batch_size", "build_parser", "key_value", "main", "options_from_args", "rerun_command"]

#: The command pip installs for this face (pyproject.toml's [project.scripts]).
CONSOLE_COMMAND = "cawb-train"


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


_SETTING = re.compile(r"[A-Za-z_]\w*=")  # a key=value setting, never a flag's value with a name of its own


class _SettingsLastParser(OneLineErrorParser):
    """Reads the ``key=value`` settings after every flag, wherever they stand, so that a flag taking several values
    (``--img-size 640 640``, ``--freeze 0 1 2``, ``--cawb-steps 30 80``) never takes a setting for one of its own:
    argparse gives such a flag every plain word that follows it. A word right after a flag that takes one value is
    that flag's value, as always."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if "--" not in args:
            settings = [i for i, word in enumerate(args) if _SETTING.match(word) and not self._is_value(args, i)]
            if settings:
                rest = [word for i, word in enumerate(args) if i not in settings]
                args = [*rest, "--", *(args[i] for i in settings)]
        return super().parse_known_args(args, namespace)

    def _is_value(self, args: list[str], index: int) -> bool:
        """Whether ``args[index]`` is the value of the flag before it, one that takes exactly one."""
        action = self._option_string_actions.get(args[index - 1]) if index else None
        return action is not None and action.nargs is None


def build_parser() -> argparse.ArgumentParser:
    """The ``train_cawb.py`` command line (YOLOv5-style flags; ``--cawb_steps`` spellings accepted too)."""
    parser = _SettingsLastParser(
        description="Train YOLOv5 with ultralytics and a CAWB learning-rate schedule (cosine annealing with warm "
        "booting: restarts at chosen epochs). With --data, the defaults are the CAWB article's: YOLOv5s of release "
        "v5.0 (yolov5s-v5.0.yaml, anchor-based) from scratch, 640 px, batch 16. With no --data, trains an offline "
        "demo on a generated shapes dataset (ultralytics' yolov5n, 128 px, CPU) in ./datasets/shapes; results go to "
        "train/ in ultralytics' runs_dir (see 'yolo settings').",
        epilog="Precedence: command line > hyp file > defaults. Any other ultralytics setting can be given as "
        "key=value (e.g. amp=False cache=ram) or in the hyp file. Examples:\n"
        "  cawb-train                                        (python train_cawb.py in a clone)\n"
        "  cawb-train --data coco10k --cawb-steps 30 80 --device 0\n"
        "  cawb-train --data my.yaml --hyp scratch-cos --epochs 100\n"
        "  cawb-train --cfg yolov5n-v5.0.yaml                the demo on v5.0's network at nano size\n"
        "  cawb-train --cfg yolo11n-seg.yaml                 a segmentation demo (shapes-seg data)\n"
        "  cawb-train --resume runs/train/exp/weights/last.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("data and model")
    run.add_argument("--data", help=f"dataset yaml (ultralytics format, read as yolo train reads it), or a folder "
                     f"of class folders for a classification model: {bundled_data_help()}, or one ultralytics ships, "
                     "e.g. coco8.yaml (its images on disk). Default: the offline demo data of the model's task "
                     "(shapes; shapes-seg, shapes-pose, shapes-obb, shapes-cls)")
    run.add_argument("--cfg", help="model yaml, built from scratch: classic anchor-based YOLOv5 of releases v5.0 "
                     f"and v7.0, {', '.join(BUNDLED_MODELS)} (yolov5n-v5.0 is a CPU-sized convenience, not part of "
                     "v5.0), ultralytics' own detection models, anchor-free: yolov5n.yaml, yolov8n.yaml, "
                     "yolo11n.yaml, yolo26n.yaml, ... (any scale), a model of another task (yolo11n-seg.yaml, "
                     "yolo11n-pose.yaml, yolo11n-obb.yaml, yolo11n-cls.yaml: trained by that task's trainer), or a "
                     "path. Default: "
                     f"{ARTICLE_DEFAULTS['cfg']}; {EMBEDDED_DEFAULTS['cfg']} for the demo")
    run.add_argument("--weights", help="initial weights .pt on disk (optional; nothing is downloaded): an "
                     "ultralytics checkpoint, or one written by the YOLOv5 repository (v5.0-v7.0), imported")
    run.add_argument("--hyp", help=f"hyp YAML, ultralytics keys plus cawb_* keys: {bundled_hyp_help()} (default: "
                     "scratch-cawb; shapes-cawb for the demo)")

    loop = parser.add_argument_group("training")
    loop.add_argument("--epochs", type=int, help="total epochs (default: the hyp file's 'epochs')")
    loop.add_argument("--batch-size", "--batch", dest="batch", type=batch_size,
                      help="total batch size over all GPUs; -1 for ultralytics' auto batch (default: 16)")
    loop.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int, nargs="+", metavar="PIXELS",
                      help="train/val image size in pixels (default: 640; 128 for the demo); YOLOv5 v5.0's "
                      "'--img-size 640 640' (train, test) is taken when both are equal")
    loop.add_argument("--device", help="cuda device(s), e.g. 0 or 0,1 (multi-GPU DDP), or cpu (default: auto)")
    loop.add_argument("--workers", type=int, help="dataloader workers per process (default: 8)")
    loop.add_argument("--seed", type=int, help="global training seed (default: 0)")
    loop.add_argument("--project", help="save to project/name, relative to the working directory (default: train in "
                      "ultralytics' runs_dir setting, see 'yolo settings')")
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
    _add_yolov5_flags(parser)
    return add_version_flag(parser)


_YOLOV5_DEST = "yolov5 "  # argparse dests of the YOLOv5 aliases: never a setting's name


class _GivenAs(argparse.Action):
    """Keeps a YOLOv5 alias's value with the spelling given (``--notest`` or ``--noval``), for messages."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, (values, option_string))


def _refuse(flag: RefusedFlag) -> type[argparse.Action]:
    """An argparse action that stops parsing with one line: the flag given and what to do instead."""

    class Refuse(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{option_string}: {flag.instead}")

    return Refuse


def _add_yolov5_flags(parser: argparse.ArgumentParser) -> None:
    """YOLOv5 train.py's other flags: each alias says in --help the setting it gives; refused ones stop parsing with
    one line saying what to do instead (the group's description lists them)."""
    refused_flags = ", ".join(refused.flags[0] for refused in REFUSED)
    group = parser.add_argument_group(  # the parser keeps descriptions as written: wrapped here
        "YOLOv5 train.py flags (v5.0, v7.0)", textwrap.fill(
            f"aliases of the settings that do the same. Refused, each saying what to do instead: {refused_flags}",
            width=78))
    for alias in ALIASES:
        help_text = f"{alias.meaning}: {alias.equivalent()}".replace("%", "%%")  # argparse formats help with %
        dest = _YOLOV5_DEST + alias.flags[0]
        if alias.takes_value:
            group.add_argument(*alias.flags, dest=dest, default=argparse.SUPPRESS, action=_GivenAs, type=alias.type,
                               nargs=alias.nargs, const=alias.const, choices=alias.choices, metavar=alias.metavar,
                               help=help_text)
        else:
            group.add_argument(*alias.flags, dest=dest, default=argparse.SUPPRESS, action=_GivenAs, nargs=0,
                               help=help_text)
    for refused in REFUSED:
        group.add_argument(*refused.flags, nargs=refused.nargs or 0, action=_refuse(refused), help=argparse.SUPPRESS)


def _image_size(sizes: list[int]) -> int:
    """``--img-size``: one size, or YOLOv5 v5.0's train and test sizes when they are equal."""
    if len(sizes) == 1 or (len(sizes) == 2 and sizes[0] == sizes[1]):
        return sizes[0]
    raise HypError(f"--img-size {' '.join(map(str, sizes))}: ultralytics trains and validates at one size; give one "
                   "value (YOLOv5 v5.0's '--img-size TRAIN TEST' is taken only when both are equal)")


def _yolov5_settings(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """The settings the YOLOv5 aliases given set: key -> (value, the flag that set it). Two aliases setting one key
    differently are refused."""
    aliases = {_YOLOV5_DEST + alias.flags[0]: alias for alias in ALIASES}
    settings: dict[str, tuple[Any, str]] = {}
    for dest, given in vars(args).items():
        alias: FlagAlias | None = aliases.get(dest)
        if alias is None:
            continue
        given, flag = given
        if alias.nargs == "+":  # --freeze N (the first N layers) or --freeze 0 1 2 (those layers), as YOLOv5
            given = given[0] if len(given) == 1 else given
        for key, setting in alias.settings.items():
            value = given if setting is VALUE else setting
            if key in settings and settings[key][0] != value:
                raise HypError(f"{settings[key][1]} and {flag} contradict each other (both set {key})")
            settings[key] = (value, flag)
    return settings


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user actually gave (argparse defaults are all None/False), as train() keywords; YOLOv5's
    aliases become the settings they stand for."""
    options = {key: value for key, value in vars(args).items()
               if key != "overrides" and not key.startswith(_YOLOV5_DEST) and value is not None and value is not False}
    if "imgsz" in options:
        options["imgsz"] = _image_size(options["imgsz"])
    aliased = _yolov5_settings(args)
    for key, (value, flag) in aliased.items():
        if key in options and options[key] != value:
            raise HypError(f"{flag} contradicts --{key} {options[key]} (it sets {key} {value})")
        options[key] = value
    cawb_flags = sorted(key for key in options if key.startswith("cawb_"))
    for key in RUN_OPTIONS & set(aliased):
        if cawb_flags:  # e.g. --linear-lr, ultralytics' schedule, beside --cawb-steps
            raise HypError(f"{aliased[key][1]} (ultralytics' own schedule instead of CAWB) contradicts "
                           f"--{cawb_flags[0].replace('_', '-')}")
    flags = set(options)
    for key, value in args.overrides:
        if key in options:
            twice = f"as a flag and as {key}=..." if key in flags else f"as {key}=... twice"
            raise HypError(f"{key} is given twice: {twice}")
        options[key] = value
    return options


def rerun_command(script: str | Path | None = None) -> str:
    """This command as the user can type it again from any directory, for the ``--resume`` line: the installed
    ``cawb-train`` when that is what ran (and the shell finds it), ``python /abs/path/train_cawb.py`` for a clone's
    script, ``python -m cawb.cli.train`` for the module. ``script`` is what ran (default ``sys.argv[0]``)."""
    script = Path(sys.argv[0] if script is None else script)
    if script.suffix == ".py":
        if script.resolve() == Path(__file__).resolve():
            return "python -m cawb.cli.train"
        return f"python {shlex.quote(str(script.resolve()))}"  # a clone's train_cawb.py, from any directory
    installed = shutil.which(CONSOLE_COMMAND)
    if script.name == CONSOLE_COMMAND and installed and Path(installed).resolve() != script.resolve():
        return shlex.quote(str(script.absolute()))  # another environment's cawb-train than the shell's
    return CONSOLE_COMMAND if installed or script.name == CONSOLE_COMMAND else "python -m cawb.cli.train"


def main(argv: Sequence[str] | None = None) -> int:
    """``train_cawb.py``: parse, plan, train, print where the results are and the final mAPs. Exit status as
    :func:`cawb.cli.common.run_cli` says (2: bad input, 130: interrupted, with the ``--resume`` command)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = rerun_command()

    def work() -> int:
        result = train(plan_run(**options_from_args(args)))
        fmt = lambda value: "n/a" if value is None else f"{value:.4f}"  # noqa: E731
        for note in result.notes:  # said at the start too, but long since scrolled away
            print(f"warning: {note}", file=sys.stderr)
        numbers = "  ".join(f"{name}: {fmt(value)}" for name, value in result.task_metrics.items())
        print(f"\nresults: {result.save_dir}\nweights: {result.weights}\n{numbers}  (ultralytics validator, "
              f"{result.weights.name})")
        return 0

    def interrupted(error) -> str:
        last = getattr(error, "last", None)
        if last:
            resume = f"{command} --resume {shlex.quote(str(last))}"
            return f"interrupted: finished epochs are saved; continue with\n  {resume}"
        return "interrupted before a checkpoint was saved: nothing to resume"

    def write_failed(error: OSError) -> str:
        last = getattr(error, "last", None)
        if last:
            return f"the last good checkpoint is intact: once that is fixed, continue with {command} --resume {last}"
        return "nothing to resume yet: once that is fixed, rerun the same command"

    return run_cli(work, interrupted=interrupted, disk_hint=write_failed)
