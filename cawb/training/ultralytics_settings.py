"""Types and ranges of ultralytics' own settings, checked at the edge with one-line messages.

ultralytics checks its settings (``ultralytics.cfg.check_cfg``) only when a trainer is built, after the model and
often the data: a bad ``lr0`` is found late, as a ``TypeError`` naming nothing the user typed. This module runs the
same check up front, on any mapping of settings (a hyp file, ``key=value`` flags, a search space's bounds), and
restates a failure as :class:`cawb.hyp.HypError` naming the source, the key, the value and what is allowed.

The key lists are ultralytics' own (``CFG_FLOAT_KEYS``, ``CFG_FRACTION_KEYS``, ``CFG_INT_KEYS`` with
``CFG_INT_MIN``, ``CFG_BOOL_KEYS``, ``CFG_STR_KEYS``); on top of them, a few values ultralytics accepts but
training then refuses or silently mishandles (NaN or infinite numbers, a negative ``lr0`` or ``weight_decay``,
which torch's optimizers refuse, a negative ``warmup_epochs``) and booleans given for numbers. Keys that are not
ultralytics settings (the ``cawb_*`` keys, unknown keys) are left to :func:`cawb.hyp.validate_hyp`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from cawb.hyp import HypError, ultralytics_defaults

__all__ = ["check_ultralytics_settings", "tunable_ultralytics_keys"]

# Lower bounds training needs beyond ultralytics' own check (torch's optimizers refuse negative lr and decay).
_MINIMUMS: dict[str, float] = {"lr0": 0.0, "weight_decay": 0.0, "warmup_epochs": 0.0}


def _requirement(key: str) -> str | None:
    """What ultralytics allows for ``key``, in words (None for keys with no simple rule)."""
    from ultralytics.cfg import (
        CFG_BOOL_KEYS,
        CFG_FLOAT_KEYS,
        CFG_FRACTION_KEYS,
        CFG_INT_KEYS,
        CFG_INT_MIN,
        CFG_STR_KEYS,
    )

    if key in _MINIMUMS:
        return f"a finite number >= {_MINIMUMS[key]:g}"
    if key in CFG_FRACTION_KEYS:
        return "a number in [0, 1]"
    if key in CFG_FLOAT_KEYS:
        return "a finite number"
    if key in CFG_INT_KEYS:
        return f"an integer >= {CFG_INT_MIN[key]}" if key in CFG_INT_MIN else "an integer"
    if key in CFG_BOOL_KEYS:
        return "true or false"
    if key in CFG_STR_KEYS:
        return "a string"
    return None


def _is_numeric_key(key: str) -> bool:
    from ultralytics.cfg import CFG_FLOAT_KEYS, CFG_FRACTION_KEYS, CFG_INT_KEYS

    return key in CFG_FLOAT_KEYS or key in CFG_FRACTION_KEYS or key in CFG_INT_KEYS


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


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
                raise HypError(f"{source}: {key}={value!r} is invalid: it must be {requirement}")
        try:
            check_cfg({key: value}, hard=True)
        except (TypeError, ValueError) as error:
            if requirement is None:
                raise HypError(f"{source}: {_first_line(error)}") from None
            raise HypError(f"{source}: {key}={value!r} is invalid: it must be {requirement}") from None


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
