#!/usr/bin/env python
"""Build a seeded COCO2017 subset (10k train / 1k val by default) for YOLO training and pycocotools. ``--help`` for the flags; the code is :mod:`cawb.cli.sample_coco`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from cawb.cli.sample_coco import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
