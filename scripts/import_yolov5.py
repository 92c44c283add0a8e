#!/usr/bin/env python
"""Import a checkpoint of the YOLOv5 repository as an ultralytics checkpoint. ``--help`` for the flags; the code is :mod:`cawb.cli.import_yolov5`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from cawb.cli.import_yolov5 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
