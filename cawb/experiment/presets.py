"""The comparison's named settings (``compare.py --preset``), the one source of the article's setup and of the
offline CPU one; the tuner's CPU preset is built from the latter.
"""

from __future__ import annotations

from typing import Any

from cawb.utils.resources import bundled_data, bundled_hyp

__all__ = ["COMPARE_PRESETS", "DEFAULT_PRESET"]

#: Named comparison settings; flags given with a preset override its values.
COMPARE_PRESETS: dict[str, dict[str, Any]] = {
    # The seed article: YOLOv5s of release v5.0 from scratch, 150 epochs, 640 px, batch 16 (v5.0's default) on the
    # 10k/1k COCO2017 subsets, 3 seeds.
    "article": {
        "data": bundled_data("coco10k.yaml"),
        "arms": [bundled_hyp("hyp.scratch-cos.yaml"), bundled_hyp("hyp.scratch-cawb.yaml")],
        "seeds": [0, 1, 2],
        "epochs": 150,
        "cfg": "yolov5s-v5.0.yaml",
        "batch": 16,
        "imgsz": 640,
        "device": "0",
        "project": "runs/compare",
    },
    # Offline and CPU-sized: the article's recipe at nano size: the generated shapes dataset, v5.0's layout at nano
    # size (yolov5n-v5.0, not part of v5.0) at 128 px, the shapes hyp files with their restarts scaled to 60 epochs.
    # 60, not the files' 20: v5.0's loss is far smaller than ultralytics' and SGD at lr0 0.01 moves it slowly, so 20
    # epochs leave it barely started (docs/RESULTS.md).
    "cpu": {
        "data": bundled_data("shapes.yaml"),
        "arms": [bundled_hyp("hyp.shapes-cos.yaml"), bundled_hyp("hyp.shapes-cawb.yaml")],
        "seeds": [0, 1],
        "epochs": 60,
        "cfg": "yolov5n-v5.0.yaml",
        "batch": 16,
        "imgsz": 128,
        "device": "cpu",
        "workers": 0,
        "project": "runs/compare-cpu",
    },
}
#: The preset whose values fill in what the flags leave out when no preset is named.
DEFAULT_PRESET = "article"
