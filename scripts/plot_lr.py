#!/usr/bin/env python
"""Draw the learning-rate schedule of a hyp file as ultralytics' trainer applies it. ``--help`` for the flags; the code is :mod:`cawb.cli.plot_lr`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from cawb.cli.plot_lr import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
