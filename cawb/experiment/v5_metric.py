"""Mean average precision as YOLOv5 release v5.0's ``test.py`` reported it: the article's metric.

The article's 0.294 / 0.161 came from v5.0's own evaluation of a dataset it did not know as COCO, so not from
pycocotools but from v5.0's definition, which differs from COCO's in four ways; :func:`v5_map` computes it from
COCO-format ground truth and detections:

* **Targets**: every box of the ground truth, crowd boxes included (COCO ignores crowd regions).
* **Detections**: up to 300 per image, the highest scores (COCO keeps 100).
* **Matching**, per image and class, once: the detections of the class, in decreasing score, each take the target of
  that class with which their IoU is highest; one whose best IoU exceeds 0.5 and whose target no higher-scored
  detection took is a true positive, at each threshold ``t`` of 0.50, 0.55, ..., 0.95 where that IoU exceeds ``t``
  (strictly). A detection whose best target is taken is a false positive, even when it overlaps another target
  well (COCO matches per threshold, each detection to the best still-free target).
* **AP** per class and threshold: the detections of all images in decreasing score (ties in input order), recall
  ``TP / targets`` and precision ``TP / (TP + FP)`` after each; the curve is given sentinels (recall 0 at precision
  1 before it, recall ``last + 0.01`` at precision 0 after it), the precision replaced by its envelope (the highest
  precision at any greater recall), then linearly interpolated at recall 0, 0.01, ..., 1 and integrated by the
  trapezoid rule. A class with targets but no detection has AP 0; classes without targets do not count. mAP is the
  mean over the classes with targets; mAP_0.5:0.95 averages the ten thresholds first.

Pure numpy: no torch, no pycocotools.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["IOU_THRESHOLDS", "MAX_DETECTIONS", "V5Map", "average_precision", "match_image", "v5_map"]

#: The IoU thresholds of mAP_0.5:0.95.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: Detections kept per image, the highest scores first.
MAX_DETECTIONS = 300
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it


@dataclasses.dataclass(frozen=True)
class V5Map:
    """mAP_0.5 and mAP_0.5:0.95 as v5.0 reported them, and each class's AP at the ten thresholds."""

    map50: float
    map50_95: float
    per_class: dict[int, list[float]]


def _iou(boxes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """IoU of every box ``[N, 4]`` with every target ``[M, 4]`` (``x0, y0, x1, y1``): ``[N, M]``."""
    low = np.maximum(boxes[:, None, :2], targets[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], targets[None, :, 2:])
    inter = np.clip(high - low, 0, None).prod(2)
    area_boxes = (boxes[:, 2:] - boxes[:, :2]).prod(1)
    area_targets = (targets[:, 2:] - targets[:, :2]).prod(1)
    return inter / (area_boxes[:, None] + area_targets[None, :] - inter)


def match_image(boxes: np.ndarray, classes: np.ndarray, target_boxes: np.ndarray,
                target_classes: np.ndarray) -> np.ndarray:
    """Which detections of one image are true positives at each threshold: ``[N, 10]`` booleans.

    ``boxes`` ``[N, 4]`` and ``classes`` ``[N]`` are the image's detections in decreasing score; ``target_boxes``
    ``[M, 4]`` and ``target_classes`` ``[M]`` its ground truth (boxes ``x0, y0, x1, y1``).
    """
    correct = np.zeros((len(boxes), len(IOU_THRESHOLDS)), dtype=bool)
    for cls in np.unique(target_classes):
        targets = np.flatnonzero(target_classes == cls)
        detections = np.flatnonzero(classes == cls)
        if not len(detections):
            continue
        iou = _iou(boxes[detections], target_boxes[targets])
        best, best_target = iou.max(1), iou.argmax(1)
        taken: set[int] = set()
        for k in np.flatnonzero(best > IOU_THRESHOLDS[0]):  # in decreasing score
            if best_target[k] not in taken:
                taken.add(int(best_target[k]))
                correct[detections[k]] = best[k] > IOU_THRESHOLDS
    return correct


def average_precision(recall: Sequence[float], precision: Sequence[float]) -> float:
    """The area under one precision-recall curve (recall non-decreasing, one point per detection), as v5.0
    computed it: sentinels, envelope, 101-point linear interpolation, trapezoid rule (see the module docstring)."""
    recall = np.concatenate(([0.0], recall, [recall[-1] + 0.01]))
    precision = np.concatenate(([1.0], precision, [0.0]))
    envelope = np.flip(np.maximum.accumulate(np.flip(precision)))
    points = np.linspace(0, 1, 101)
    return float(_trapezoid(np.interp(points, recall, envelope), points))


def _by_image(records: Iterable[Mapping[str, Any]], image_ids: Iterable[int]) -> dict[int, list]:
    grouped: dict[int, list] = {image_id: [] for image_id in image_ids}
    for record in records:
        grouped.setdefault(record["image_id"], []).append(record)
    return grouped


def _xyxy(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    boxes = np.array([record["bbox"] for record in records], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def v5_map(ground_truth: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
           max_detections: int = MAX_DETECTIONS) -> V5Map:
    """v5.0's mAP of COCO results records (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``, ``score``)
    against a COCO ground-truth dict (``images``, ``annotations``; crowd annotations count as targets).

    No detection at all, or no target, gives 0.0 (as v5.0 printed).
    """
    truth = _by_image(ground_truth.get("annotations", []), (image["id"] for image in ground_truth["images"]))
    found = _by_image(detections, truth)
    correct, scores, predicted, target_classes = [], [], [], []
    for image_id, targets in truth.items():
        kept = sorted(found.get(image_id, []), key=lambda record: -record["score"])[:max_detections]
        classes = np.array([record["category_id"] for record in kept], dtype=np.int64)
        labels = np.array([record["category_id"] for record in targets], dtype=np.int64)
        correct.append(match_image(_xyxy(kept), classes, _xyxy(targets), labels))
        scores.append(np.array([record["score"] for record in kept], dtype=np.float64))
        predicted.append(classes)
        target_classes.append(labels)
    correct, scores = np.concatenate(correct), np.concatenate(scores)
    predicted, target_classes = np.concatenate(predicted), np.concatenate(target_classes)
    order = np.argsort(-scores, kind="stable")
    correct, predicted = correct[order], predicted[order]

    per_class: dict[int, list[float]] = {}
    for cls in np.unique(target_classes):
        targets = int((target_classes == cls).sum())
        hits = correct[predicted == cls]
        if not len(hits):
            per_class[int(cls)] = [0.0] * len(IOU_THRESHOLDS)
            continue
        true_positives = hits.cumsum(0)
        false_positives = (~hits).cumsum(0)
        recall = true_positives / targets
        precision = true_positives / (true_positives + false_positives)
        per_class[int(cls)] = [average_precision(recall[:, j], precision[:, j]) for j in range(len(IOU_THRESHOLDS))]
    if not per_class:
        return V5Map(0.0, 0.0, {})
    table = np.array(list(per_class.values()))
    return V5Map(float(table[:, 0].mean()), float(table.mean(1).mean()), dict(per_class))
