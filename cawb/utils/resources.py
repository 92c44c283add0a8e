"""The hyp and dataset yamls cawb ships (the top-level ``hyp/`` and ``data/`` folders): where they are.

Every default and preset names its files through :func:`bundled_hyp` and :func:`bundled_data`, never through a
path of its own, so that how the files are found (a clone today; ``importlib.resources`` in an installed wheel)
is decided here alone.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_data", "bundled_hyp"]

_CHECKOUT = Path(__file__).resolve().parents[2]


def bundled_hyp(name: str) -> Path:
    """The bundled hyp file ``name`` (e.g. ``"hyp.scratch-cawb.yaml"``)."""
    return _CHECKOUT / "hyp" / name


def bundled_data(name: str) -> Path:
    """The bundled dataset yaml ``name`` (e.g. ``"shapes.yaml"``)."""
    return _CHECKOUT / "data" / name
