"""A compact live view: one block of lines redrawn in place on a terminal, plain lines elsewhere.

On a terminal (``stream.isatty()``) the block is rewritten where it stands (ANSI: cursor up, clear to the end of the
screen), each line cut to the terminal's width so that nothing wraps. Anywhere else (a log file, a CI console,
``| tee``) nothing is redrawn: a row is printed as one line each time its *milestone* changes (e.g. a new epoch or
a new state), not each time its text does (an ETA that ticks), so a log stays short and readable.
"""

from __future__ import annotations

import shutil
import sys
from typing import Sequence, TextIO

__all__ = ["LiveRow", "LiveView"]

#: (key, text, milestone): the row's identity, what is shown, and what must change for a non-terminal to print it.
LiveRow = tuple[str, str, str]


class LiveView:
    """Redraw ``header`` + rows in place on a terminal; print changed milestones elsewhere."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._block: list[str] = []
        self._drawn = 0
        self._milestones: dict[str, str] = {}

    def _fit(self, line: str) -> str:
        width = shutil.get_terminal_size((120, 24)).columns
        return line if len(line) < width else line[: max(width - 2, 10)] + "…"

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        for line in self._block:
            self.stream.write(self._fit(line) + "\n")
        self._drawn = len(self._block)
        self.stream.flush()

    def update(self, header: str, rows: Sequence[LiveRow]) -> None:
        """Show the block; off a terminal, print the rows whose milestone changed since the last call."""
        if self.interactive:
            self._block = [header, *(text for _, text, _ in rows)]
            self._erase()
            self._draw()
            return
        for key, text, milestone in rows:
            if self._milestones.get(key) != milestone:
                self._milestones[key] = milestone
                self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, line: str) -> None:
        """A line that stays (an event, an error), printed above the block."""
        if self.interactive:
            self._erase()
            self.stream.write(line + "\n")
            self._draw()
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Leave the last block on screen as it stands; later output goes below it."""
        self._drawn = 0
        self.stream.flush()
