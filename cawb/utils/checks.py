"""Type and range checks of plain values, for validation at the edge.

A setting is an integer only when it is a real integer (``True`` is not 1, ``2.0`` is not 2), and a number only
when it is a finite real (``True``, NaN and infinities are not). :func:`is_int` and :func:`is_number` answer; the
``require_*`` functions raise :class:`~cawb.utils.errors.InputError` (or the ``error`` class given) with the standard
message ``<name>=<value> is invalid: it must be <requirement>``.

The lowest layer: imports nothing from the rest of cawb but :mod:`cawb.utils.errors`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from cawb.utils.errors import InputError

__all__ = ["is_int", "is_number", "require_int", "require_number"]


def is_int(value: Any, minimum: int | None = None) -> bool:
    """Whether ``value`` is an integer (bools excluded) and, given ``minimum``, at least that."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False
    return minimum is None or value >= minimum


def is_number(value: Any, minimum: float | None = None, maximum: float | None = None, *,
              open_min: bool = False, open_max: bool = False) -> bool:
    """Whether ``value`` is a finite real number (bools excluded) within the bounds given (closed unless
    ``open_min``/``open_max``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return False
    if minimum is not None and (value <= minimum if open_min else value < minimum):
        return False
    return maximum is None or (value < maximum if open_max else value <= maximum)


def _bounds(minimum: float | None, maximum: float | None, open_min: bool, open_max: bool) -> str:
    if minimum is not None and maximum is not None:
        return f" in {'(' if open_min else '['}{minimum:g}, {maximum:g}{')' if open_max else ']'}"
    if minimum is not None:
        return f" {'>' if open_min else '>='} {minimum:g}"
    if maximum is not None:
        return f" {'<' if open_max else '<='} {maximum:g}"
    return ""


def require_int(value: Any, name: str, minimum: int | None = None, *, unit: str = "",
                error: type[Exception] = InputError) -> int:
    """``value`` as an int, or ``error``: ``name=value is invalid: it must be an integer >= minimum (unit)``.

    ``name`` is shown as the user wrote the setting: a key (``epochs``) or a flag (``--jobs``, shown with a space).
    """
    if not is_int(value, minimum):
        raise error(f"{_shown(name, value)} is invalid: it must be an integer{_bounds(minimum, None, False, False)}"
                    + (f" ({unit})" if unit else ""))
    return int(value)


def require_number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None, *,
                   open_min: bool = False, open_max: bool = False, unit: str = "",
                   error: type[Exception] = InputError) -> float:
    """``value`` as a float, or ``error``: ``name=value is invalid: it must be a finite number in [min, max]``."""
    if not is_number(value, minimum, maximum, open_min=open_min, open_max=open_max):
        what = "a number" if minimum is not None or maximum is not None else "a finite number"
        raise error(f"{_shown(name, value)} is invalid: it must be {what}{_bounds(minimum, maximum, open_min, open_max)}"
                    + (f" ({unit})" if unit else ""))
    return float(value)


def _shown(name: str, value: Any) -> str:
    """``--jobs 0`` for a flag, ``epochs=0`` for a key."""
    return f"{name} {value!r}" if name.startswith("-") else f"{name}={value!r}"
