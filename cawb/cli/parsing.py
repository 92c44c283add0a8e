"""What the faces' argparse parsers share: one-line errors and range-checked number types."""

from __future__ import annotations

import argparse
from typing import Callable, NoReturn

__all__ = ["OneLineErrorParser", "int_at_least"]


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors (unknown flag, missing or bad value) are one line on stderr, exit status 2.

    argparse's own error prints the whole usage first; the faces' rule is one line that names the flag, the value
    and what is allowed, and ``--help`` for the rest.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum`` (the error says so)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: it must be an integer >= {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is invalid: it must be an integer >= {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
