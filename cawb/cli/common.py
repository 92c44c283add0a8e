"""What every command's parser shares: the version flag and the names of the bundled hyp and dataset files."""

from __future__ import annotations

import argparse

from cawb import __version__
from cawb.utils.resources import bundled_data_names, bundled_hyp_names

__all__ = ["add_version_flag", "bundled_data_help", "bundled_hyp_help"]


def add_version_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--version`` to ``parser``; its help line shows the version, so ``--help`` prints it too."""
    parser.add_argument("--version", action="version", version=f"cawb {__version__}",
                        help=f"print the version (cawb {__version__}) and exit")
    return parser


def bundled_hyp_help() -> str:
    """How to name a bundled hyp file, for a flag's help: the short names, and that a path works too."""
    return f"a path, or a bundled hyp file by name: {', '.join(bundled_hyp_names())}"


def bundled_data_help() -> str:
    """How to name a bundled dataset yaml, for a flag's help."""
    return f"a path, or a bundled dataset yaml by name: {', '.join(bundled_data_names())}"
