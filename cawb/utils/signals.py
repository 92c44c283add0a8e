"""SIGTERM handled as Ctrl-C, so that a job scheduler's stop (Slurm's ``scancel`` or time limit, ``kill PID``)
ends a run as cleanly as a user's Ctrl-C: the same ``KeyboardInterrupt`` paths save what is finished."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

__all__ = ["sigterm_as_ctrl_c"]


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block SIGTERM raises ``KeyboardInterrupt``; the previous handler is restored after it.

    Outside the main thread (a program embedding cawb) signals cannot be handled there: its own handling stays.
    """
    try:
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
