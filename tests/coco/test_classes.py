"""cawb.coco.classes: the fixed COCO table is the one ultralytics ships, and reading it loads neither ultralytics
nor torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from cawb.coco.classes import coco_classes

ROOT = Path(__file__).resolve().parents[2]


def test_table_and_names_equal_what_ultralytics_ships():
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import ultralytics
    from ultralytics.data.converter import coco80_to_coco91_class, coco91_to_coco80_class

    classes = coco_classes()
    assert list(classes.category_ids) == coco80_to_coco91_class()
    table = coco91_to_coco80_class()
    for category_id in range(0, 95):
        expected = table[category_id - 1] if 1 <= category_id <= len(table) else None
        assert classes.yolo_class(category_id) == expected
    shipped = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/datasets/coco.yaml").read_text())["names"]
    assert list(classes.names) == [shipped[k] for k in range(80)]


def test_reading_the_classes_imports_neither_ultralytics_nor_torch():
    code = (
        "import sys; from cawb.coco.classes import coco_classes as f; f(); "
        "print('ultralytics' in sys.modules, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.split() == ["False", "False"]
