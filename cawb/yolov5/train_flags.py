"""YOLOv5's ``train.py`` flags (releases v5.0 and v7.0) and what each one is here: the one table behind
``cawb-train``'s YOLOv5 flags and the hints for ``key=value`` names that are YOLOv5's.

Every flag of those two releases is one of three things:

* a flag ``cawb-train`` has under YOLOv5's own name (:data:`SAME_FLAGS`: ``--weights``, ``--batch-size``, ...);
* an alias (:data:`ALIASES`) of the ultralytics setting, or recipe key, that does the same: ``--noval`` is
  ``val=False``, ``--cache`` is ``cache=ram``;
* refused (:data:`REFUSED`), with what to do instead: ``--evolve`` is ``cawb-tune``'s job.

The flag lists are those of YOLOv5's ``train.py`` ``parse_opt`` at the tags v5.0 (April 2021) and v7.0 (November
2022). Pure data and a lookup: no argparse, no torch, no ultralytics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

__all__ = ["ALIASES", "REFUSED", "RUN_OPTIONS", "SAME_FLAGS", "VALUE", "FlagAlias", "RefusedFlag", "hint_for_key"]


@dataclasses.dataclass(frozen=True)
class FlagAlias:
    """A YOLOv5 flag that sets ``settings``.

    ``settings`` maps each key to its value; :data:`VALUE` stands for the value given after the flag, converted by
    ``type`` (``nargs``: argparse's, e.g. ``"+"`` for ``--freeze 0 1 2``; ``const`` the value of a bare flag whose
    value is optional). A key of ``settings`` that is not an ultralytics or recipe key is a ``cawb-train`` option
    (``scheduler``). ``meaning`` is what YOLOv5 says the flag does.
    """

    flags: tuple[str, ...]
    settings: dict[str, Any]
    meaning: str
    type: Callable[[str], Any] | None = None
    nargs: str | None = None
    const: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def takes_value(self) -> bool:
        return any(value is VALUE for value in self.settings.values())

    def equivalent(self) -> str:
        """What this flag gives, as ``key=value`` settings (``cawb-train`` options as flags), for help texts and
        hints: ``val=False``, ``--scheduler cos cos_lr=False``, ``patience=N``."""
        shown = []
        for key, setting in self.settings.items():
            text = self.metavar or "VALUE" if setting is VALUE else setting
            shown.append(f"--{key} {text}" if key in RUN_OPTIONS else f"{key}={text}")
        return " ".join(shown)


@dataclasses.dataclass(frozen=True)
class RefusedFlag:
    """A YOLOv5 flag ``cawb-train`` refuses; ``instead`` says why and what to do. ``nargs`` is how many values it
    takes in YOLOv5 (argparse's ``"?"``, ``"*"``, or None for a bare switch), so its value is never read as a
    ``key=value``."""

    flags: tuple[str, ...]
    instead: str
    nargs: str | None = None


class _Value:
    """The value given after a flag (in :attr:`FlagAlias.settings`)."""

    def __repr__(self) -> str:
        return "VALUE"


VALUE: Any = _Value()

#: Keys of :attr:`FlagAlias.settings` that are ``cawb-train`` options rather than settings.
RUN_OPTIONS = frozenset({"scheduler"})

#: YOLOv5 flags that ``cawb-train`` has under the same name, with the same meaning.
SAME_FLAGS = ("--weights", "--cfg", "--data", "--hyp", "--epochs", "--batch-size", "--imgsz", "--img", "--img-size",
              "--resume", "--device", "--workers", "--project", "--name", "--exist-ok", "--seed")

#: YOLOv5 flags that set an ultralytics setting (or a recipe key) doing the same.
ALIASES: tuple[FlagAlias, ...] = (
    FlagAlias(("--rect",), {"rect": True}, "rectangular training"),
    FlagAlias(("--noval", "--notest"), {"val": False}, "validate only the final epoch (v5.0: --notest)"),
    FlagAlias(("--nosave",), {"save": False}, "save only the final checkpoint"),
    FlagAlias(("--noautoanchor",), {"autoanchor": False}, "no AutoAnchor check (v5.0 models)"),
    FlagAlias(("--noplots",), {"plots": False}, "save no plot files"),
    FlagAlias(("--cache",), {"cache": VALUE}, "cache images in ram (a bare --cache) or on disk", nargs="?",
              const="ram", choices=("ram", "disk"), metavar="ram|disk"),
    FlagAlias(("--cache-images",), {"cache": "ram"}, "cache images in RAM (v5.0)"),
    FlagAlias(("--multi-scale",), {"multi_scale": 0.5}, "vary the image size +/- 50%"),
    FlagAlias(("--single-cls",), {"single_cls": True}, "train multi-class data as single-class"),
    FlagAlias(("--adam",), {"optimizer": "Adam"}, "Adam instead of SGD (v5.0)"),
    FlagAlias(("--optimizer",), {"optimizer": VALUE}, "optimizer (v7.0: SGD, Adam, AdamW)", metavar="NAME"),
    FlagAlias(("--linear-lr",), {"scheduler": "cos", "cos_lr": False},
              "linear lr decay: ultralytics' linear schedule instead of CAWB (v5.0)"),
    FlagAlias(("--cos-lr",), {"scheduler": "cos", "cos_lr": True},
              "cosine lr decay: ultralytics' one-cycle cosine instead of CAWB (v7.0)"),
    FlagAlias(("--label-smoothing",), {"label_smoothing_eps": VALUE}, "class label smoothing epsilon (v5.0 models)",
              type=float, metavar="EPS"),
    FlagAlias(("--patience",), {"patience": VALUE}, "stop after N epochs without improvement", type=int,
              metavar="N"),
    FlagAlias(("--freeze",), {"freeze": VALUE}, "freeze the first N layers, or the layers listed (0 1 2)", type=int,
              nargs="+", metavar="N"),
    FlagAlias(("--save-period", "--save_period"), {"save_period": VALUE}, "save a checkpoint every N epochs",
              type=int, metavar="N"),
)

_WANDB = ("a W&B logging option: ultralytics logs to W&B when its wandb setting is on (yolo settings "
          "wandb=True), under --project and --name")

#: YOLOv5 flags with no ultralytics equivalent, and what to do instead.
REFUSED: tuple[RefusedFlag, ...] = (
    RefusedFlag(("--evolve",), "hyperparameter evolution is cawb-tune's job here (scripts/tune.py): an Optuna search "
                "of the CAWB settings and, with --space, of any numeric hyp key", nargs="?"),
    RefusedFlag(("--bucket",), "a Google Cloud bucket: cawb reads data from disk only, give --data", nargs="?"),
    RefusedFlag(("--image-weights",), "ultralytics has no image-weighted sampling: leave it out"),
    RefusedFlag(("--quad",), "ultralytics has no quad dataloader: leave it out"),
    RefusedFlag(("--sync-bn",), "ultralytics' DDP (--device 0,1) has no SyncBatchNorm option: leave it out"),
    RefusedFlag(("--local_rank", "--local-rank"), "set by torch.distributed in YOLOv5: ultralytics starts DDP itself, "
                "run cawb-train --device 0,1 without torch.distributed.run", nargs="?"),
    RefusedFlag(("--entity",), _WANDB, nargs="?"),
    RefusedFlag(("--upload_dataset", "--upload-dataset"), _WANDB, nargs="?"),
    RefusedFlag(("--bbox_interval", "--bbox-interval"), _WANDB, nargs="?"),
    RefusedFlag(("--artifact_alias", "--artifact-alias"), _WANDB, nargs="?"),
)

# YOLOv5's names of settings ultralytics names otherwise, as key=value hints (the flags are cawb-train's too).
_RENAMED = {"batch_size": "batch=N (or --batch-size N)", "img_size": "imgsz=N (or --img-size N)"}


def _as_key(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def hint_for_key(key: str) -> str | None:
    """What to give instead of a ``key=value`` (or hyp key) named after a YOLOv5 flag, or None when ``key`` is not
    one: ``noval`` -> ``"YOLOv5's --noval: give val=False (or the flag --noval)"``."""
    key = key.replace("-", "_")
    if key in _RENAMED:
        return f"YOLOv5's --{key.replace('_', '-')}: give {_RENAMED[key]}"
    for entry in (*ALIASES, *REFUSED):
        flag = next((flag for flag in entry.flags if _as_key(flag) == key), None)
        if flag is None:
            continue
        if isinstance(entry, FlagAlias):
            return f"YOLOv5's {flag}: give {entry.equivalent()} (or the flag {flag})"
        return f"YOLOv5's {flag}: {entry.instead}"
    return None
