#!/usr/bin/env python
"""Train YOLOv5 on ultralytics with a CAWB learning-rate schedule. `python train_cawb.py --help` for the flags.

    python train_cawb.py                                   # offline demo: generated shapes data, yolov5n, CPU
    python train_cawb.py --data data/coco10k.yaml --cawb-steps 30 80 --device 0
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a clone without installing

from cawb.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
