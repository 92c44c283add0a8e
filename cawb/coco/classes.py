"""The 80 COCO detection classes: their names and COCO category ids (the 91-to-80 mapping), a fixed table.

COCO2017's detection annotations number their categories 1..90 with ten ids unused; YOLO datasets number the 80
classes 0..79 in category-id order. Both lists are facts of the COCO dataset, the same in every ultralytics
release (``ultralytics.data.converter.coco80_to_coco91_class`` and ``cfg/datasets/coco.yaml``, which the tests
compare with this table), so they are written here instead of being read from an installed package: the subset
builder needs neither ultralytics nor torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["COCO_CATEGORY_IDS", "COCO_NAMES", "CocoClasses", "coco_classes"]

#: YOLO class k's name (k = 0..79).
COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

#: YOLO class k's COCO category id (k = 0..79; ids 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83 are unused).
COCO_CATEGORY_IDS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)


@dataclass(frozen=True)
class CocoClasses:
    """``names[k]``: name of YOLO class k (0..79); ``category_ids[k]``: its COCO category id (1..90).
    ``yolo_class(category_id)`` is the inverse: the YOLO class of a COCO category id, or None."""

    names: tuple[str, ...]
    category_ids: tuple[int, ...]

    def yolo_class(self, category_id: int) -> int | None:
        return _inverse(self.category_ids).get(category_id)


@functools.cache
def _inverse(category_ids: tuple[int, ...]) -> dict[int, int]:
    return {category_id: k for k, category_id in enumerate(category_ids)}


def coco_classes() -> CocoClasses:
    """The 80 COCO detection classes (:data:`COCO_NAMES`, :data:`COCO_CATEGORY_IDS`)."""
    return CocoClasses(COCO_NAMES, COCO_CATEGORY_IDS)
