#!/usr/bin/env python
"""Evaluate trained weights with pycocotools and ultralytics on a dataset's val split. ``--help`` for the flags; the code is :mod:`cawb.cli.evaluate`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from cawb.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
