#!/usr/bin/env python
"""Train cos and CAWB arms over several seeds and rebuild the article's mAP table with spreads. ``--help`` for the flags; the code is :mod:`cawb.cli.compare`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from cawb.cli.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
