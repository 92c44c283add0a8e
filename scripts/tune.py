#!/usr/bin/env python
"""Search the CAWB restarts and settings for your data with Optuna and write a ready hyp file. ``--help`` for the flags; the code is :mod:`cawb.cli.tune`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from cawb.cli.tune import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
