"""Types and ranges of ultralytics' own settings, checked at the edge with one-line messages.

ultralytics checks its settings (``ultralytics.cfg.check_cfg``) only when a trainer is built, after the model and
often the data: a bad ``lr0`` is found late, as a ``TypeError`` naming nothing the user typed. This module runs the
same check up front, on any mapping of settings (a hyp file, ``key=value`` flags, a search space's bounds), and
restates a failure as :class:`cawb.utils.errors.HypError` naming the source, the key, the value and what is allowed.

The key lists are ultralytics' own (``CFG_FLOAT_KEYS``, ``CFG_FRACTION_KEYS``, ``CFG_INT_KEYS`` with
``CFG_INT_MIN``, ``CFG_BOOL_KEYS``, ``CFG_STR_KEYS``, as far as the installed release has them), and so are the
optimizer names its trainer builds; both come through :mod:`cawb.utils.ultralytics_compat`. On top of them, a few values ultralytics accepts but training then refuses or silently
mishandles: NaN or infinite numbers, a negative ``lr0`` or ``weight_decay`` (torch's optimizers refuse them), a
negative ``warmup_epochs``, booleans given for numbers, a ``cache`` other than true/false/ram/disk, a training
``imgsz`` that is not an integer >= 32, a ``project`` or ``name`` that is not text. Keys that are not ultralytics
settings (the ``cawb_*`` keys, unknown keys) are left to :func:`cawb.training.hyp.validate_hyp`.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

from cawb.utils.checks import is_int, is_number
from cawb.utils.errors import HypError, error_line
from cawb.utils.ultralytics_compat import default_settings as ultralytics_defaults
from cawb.utils.ultralytics_compat import optimizer_names as ultralytics_optimizers
from cawb.utils.ultralytics_compat import setting_rules

__all__ = [
    "check_device",
    "check_ultralytics_settings",
    "tunable_ultralytics_keys",
    "ultralytics_defaults",
    "ultralytics_optimizers",
]

# Lower bounds training needs beyond ultralytics' own check (torch's optimizers refuse negative lr and decay).
_MINIMUMS: dict[str, float] = {"lr0": 0.0, "weight_decay": 0.0, "warmup_epochs": 0.0}
# What training takes for keys ultralytics does not type-check (its dataloader reads any other cache value as off;
# a training imgsz is one int; project and name become path parts).
_CACHE_VALUES = (True, False, "ram", "disk")
_TEXT_KEYS = ("project", "name")
_MIN_IMGSZ = 32


def _extra_check(key: str, value: Any) -> str | None:
    """What ``key`` must be when ``value`` breaks a rule beyond ultralytics' ``check_cfg``; None when it is fine."""
    if key == "optimizer" and isinstance(value, str):
        names = ultralytics_optimizers()
        if value.lower() not in {name.lower() for name in names}:
            return f"one of {', '.join(names)} (ultralytics' optimizers; SGD is YOLOv5's)"
    if key == "cache" and value not in _CACHE_VALUES:
        return "true (or ram), disk or false"
    if key == "imgsz" and value is not None and not is_int(value, _MIN_IMGSZ):
        return f"an integer >= {_MIN_IMGSZ} (pixels; training takes one size)"
    if key in _TEXT_KEYS and value is not None and not isinstance(value, str):
        return "text (a directory name)"
    if key == "name" and isinstance(value, str) and (value in (".", "..") or "/" in value or os.sep in value):
        return "a directory name, without '/' or '..' (the run goes in project/name)"
    if key == "batch" and value is not None and not (value == -1 or is_int(value, 1)
                                                     or (is_number(value) and 0 < value < 1)):
        return "an integer >= 1, -1 (auto batch) or a fraction of GPU memory in (0, 1)"
    if key == "close_mosaic" and value is not None and not is_int(value, 0):
        return "an integer >= 0 (the final epochs trained without mosaic; 0: mosaic to the end)"
    return None


def _shown(key: str, value: Any) -> str:
    """``key=value`` as the user wrote it; an empty value (``lr0=`` or ``lr0:``) reads None in YAML."""
    return f"{key} is empty" if value is None else f"{key}={value!r} is invalid"


def _requirement(key: str) -> str | None:
    """What ultralytics allows for ``key``, in words (None for keys with no simple rule)."""
    rules = setting_rules()
    if key in rules.fraction_keys:
        return "a number in [0, 1]"
    if key in _MINIMUMS:
        return f"a finite number >= {_MINIMUMS[key]:g}"
    if key in rules.float_keys:
        return "a finite number"
    if key in rules.int_keys:
        minimum = rules.int_minimums.get(key)
        return "an integer" if minimum is None else f"an integer >= {minimum}"
    if key in rules.bool_keys:
        return "true or false"
    if key in rules.str_keys:
        return "a string"
    return None


def _is_numeric_key(key: str) -> bool:
    rules = setting_rules()
    return key in rules.float_keys or key in rules.fraction_keys or key in rules.int_keys


def check_ultralytics_settings(settings: Mapping[str, Any], source: str = "settings") -> None:
    """Check every ultralytics key of ``settings`` as ultralytics' trainer will, before anything is built.

    Args:
        settings: a mapping of setting names to values (other keys, e.g. ``cawb_*``, are ignored).
        source: where the values came from, for the message (a file name, ``command line``, ``--space x.yaml``).

    Raises:
        HypError: one line, ``<source>: <key>=<value> is invalid: it must be <what ultralytics allows>``.
    """
    from ultralytics.cfg import check_cfg

    known = ultralytics_defaults()
    for key, value in settings.items():
        if key not in known:
            continue
        requirement = _requirement(key)
        if _is_numeric_key(key) and value is not None:
            # ultralytics takes True for 1 and lets NaN/inf through; training would not.
            bad_number = isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value))
            if bad_number or (key in _MINIMUMS and isinstance(value, (int, float)) and value < _MINIMUMS[key]):
                raise HypError(f"{source}: {_shown(key, value)}: it must be {requirement}")
        try:
            check_cfg({key: value}, hard=True)
        except (TypeError, ValueError) as error:
            if requirement is None:
                raise HypError(f"{source}: {error_line(error)}") from None
            raise HypError(f"{source}: {_shown(key, value)}: it must be {requirement}") from None
        extra = _extra_check(key, value)
        if extra is not None:
            raise HypError(f"{source}: {_shown(key, value)}: it must be {extra}")


def tunable_ultralytics_keys() -> tuple[str, ...]:
    """ultralytics' numeric hyperparameters: the numeric keys of the hyperparameter section of its
    ``default.yaml`` (from ``lr0`` on: learning rate, momentum, loss gains, augmentation), plus ``close_mosaic``;
    what a search may vary besides the ``cawb_*`` keys. Run settings (epochs, batch, imgsz, ...) are not in it."""
    defaults = ultralytics_defaults()
    names = list(defaults)
    start = names.index("lr0") if "lr0" in names else 0
    hyperparameters = [*names[start:], "close_mosaic"]
    return tuple(key for key in hyperparameters if key in defaults and (_is_numeric_key(key) or key == "scale")
                 and isinstance(defaults[key], (int, float)) and not isinstance(defaults[key], bool))


def check_device(device: Any, flag: str = "--device") -> None:
    """Refuse a device this machine does not have (``--device 7`` without a GPU 7), as ultralytics' trainer would
    once the model and data are built: its own ``select_device`` (which changes nothing, ``CUDA_VISIBLE_DEVICES``
    included), run now. ``None``, ``""`` and ``cpu`` need no check.

    Raises:
        HypError: one line, ``<flag> <device>: <ultralytics' reason>``.
    """
    if device is None or str(device).strip().lower() in ("", "cpu"):
        return
    import logging

    from ultralytics.utils import LOGGER
    from ultralytics.utils.torch_utils import select_device

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # it logs its version banner before refusing
    try:
        select_device(str(device), verbose=False)
    except ValueError as error:
        raise HypError(f"{flag} {device}: {error_line(error)}") from None
    finally:
        LOGGER.setLevel(level)
