"""cawb/experiment/v5_metric.py: mAP as YOLOv5 v5.0's test.py reported it, on cases whose AP is worked out by hand."""

import numpy as np
import pytest

from cawb.experiment.evaluate import coco_bbox_eval
from cawb.experiment.v5_metric import average_precision, match_image, v5_map

A = [0, 0, 10, 10]  # COCO boxes: x, y, w, h


def ground_truth(*boxes, crowd=(), images=(1,)):
    """One image (or ``images``) holding ``boxes`` as (image, category, bbox) or (category, bbox) for image 1."""
    rows = [box if len(box) == 3 else (1, *box) for box in boxes]
    return {"images": [{"id": i, "width": 100, "height": 100, "file_name": f"{i}.png"} for i in images],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            "annotations": [{"id": k + 1, "image_id": image, "category_id": category, "bbox": bbox,
                             "area": bbox[2] * bbox[3], "iscrowd": int(k in crowd)}
                            for k, (image, category, bbox) in enumerate(rows)]}


def detections(*rows):
    """(category, bbox, score) or (image, category, bbox, score) per detection."""
    rows = [row if len(row) == 4 else (1, *row) for row in rows]
    return [{"image_id": image, "category_id": category, "bbox": bbox, "score": score}
            for image, category, bbox, score in rows]


def pycocotools_map(gt, found):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    stats, _ = coco_bbox_eval(coco, found)
    return stats[1], stats[0]


def test_every_target_found_first_is_ap_one():
    result = v5_map(ground_truth((1, A), (1, [20, 0, 10, 10])), detections((1, A, 0.9), (1, [20, 0, 10, 10], 0.8)))
    assert result.map50 == result.map50_95 == pytest.approx(1.0)


def test_a_false_positive_ranked_first_halves_the_ap():
    # recall 0 then 1, precision 0 then 1/2: the envelope is 1/2 from recall 0 to 1, so every point is 1/2
    result = v5_map(ground_truth((1, A)), detections((1, [50, 50, 10, 10], 0.9), (1, A, 0.8)))
    assert result.map50 == pytest.approx(0.5)


def test_half_the_targets_found_scores_the_interpolated_tail():
    # recall 1/2 at precision 1, then the sentinel recall 0.51 at precision 0: the curve is 1 up to 0.5 and falls
    # linearly to 0 at 0.51; trapezoids of 0.01: 50 of height 1, one of (1 + 0) / 2 -> 0.505
    assert v5_map(ground_truth((1, A), (1, [20, 0, 10, 10])), detections((1, A, 0.9))).map50 == pytest.approx(0.505)


def test_each_threshold_counts_the_one_match_where_its_iou_exceeds_it():
    # IoU 0.7: correct at 0.50, 0.55, 0.60, 0.65 only (strictly above each)
    shifted = [0, 0, 10, 7]  # inside A: IoU 70 / 100
    result = v5_map(ground_truth((1, A)), detections((1, shifted, 0.9)))
    assert result.per_class[1] == pytest.approx([1.0] * 4 + [0.0] * 6)
    assert result.map50 == 1.0 and result.map50_95 == pytest.approx(0.4)


def test_a_detection_whose_best_target_is_taken_is_a_false_positive_unlike_coco():
    # Targets A and B overlap. The first detection is A itself. The second overlaps A (IoU 0.852) more than B
    # (0.786): v5.0 gives it A, taken, so it is a false positive; COCO gives it the free B.
    b = [2, 0, 10, 10]
    second = [0.8, 0, 10, 10]
    gt, found = ground_truth((1, A), (1, b)), detections((1, A, 0.9), (1, second, 0.8))
    # v5.0: recall 1/2 at precision 1, then 1/2 at 1/2: the envelope is 1 up to recall 0.5, where np.interp takes
    # the last point (1/2), then falls to 0 at 0.51: 0.49 + 0.01 * (1 + 1/2) / 2 + 0.01 * (1/2 + 0) / 2 = 0.5
    assert v5_map(gt, found).map50 == pytest.approx(0.5)
    assert pycocotools_map(gt, found)[0] == pytest.approx(1.0)


def test_crowd_boxes_are_ordinary_targets():
    gt = ground_truth((1, A), (1, [50, 50, 20, 20]), crowd=(1,))
    found = detections((1, A, 0.9), (1, [50, 50, 20, 20], 0.8))
    assert v5_map(gt, found).map50 == pytest.approx(1.0)  # both found
    missed = v5_map(gt, detections((1, A, 0.9))).map50
    assert missed == pytest.approx(0.505)  # the crowd box is a target that was missed
    assert pycocotools_map(gt, detections((1, A, 0.9)))[0] == pytest.approx(1.0)  # COCO ignores it


def test_at_most_300_detections_per_image_count():
    wrong = [(1, [60, 60, 10, 10], 0.9)] * 300  # 300 better-scored false positives
    gt = ground_truth((1, A))
    assert v5_map(gt, detections(*wrong, (1, A, 0.5))).map50 == 0.0  # the 301st is dropped
    assert v5_map(gt, detections(*wrong[:299], (1, A, 0.5))).map50 > 0.0


def test_classes_without_detections_count_as_zero_and_classes_without_targets_not_at_all():
    gt = ground_truth((1, A), (2, [30, 30, 10, 10]))
    result = v5_map(gt, detections((1, A, 0.9), (2, [80, 80, 5, 5], 0.1)))
    assert result.per_class[1][0] == 1.0 and result.per_class[2][0] == 0.0 and result.map50 == pytest.approx(0.5)
    only_a = v5_map(ground_truth((1, A)), detections((1, A, 0.9), (2, A, 0.95)))  # class 2 has no target
    assert only_a.map50 == 1.0 and set(only_a.per_class) == {1}


def test_detections_of_all_images_are_ranked_together():
    # image 2's false positive outranks image 1's true positive: precision 0 then 1/2 -> AP 0.5
    gt = ground_truth((1, 1, A), images=(1, 2))
    assert v5_map(gt, detections((2, 1, A, 0.9), (1, 1, A, 0.8))).map50 == pytest.approx(0.5)
    assert v5_map(gt, []).map50 == 0.0 and v5_map(ground_truth(), []).map50 == 0.0


def test_average_precision_and_matching_on_their_own():
    assert average_precision([1.0], [1.0]) == pytest.approx(1.0)
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.49 + 0.01 * (1 + 2 / 3) / 2
                                                                                   + 0.5 * 2 / 3)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    correct = match_image(boxes, np.array([1, 1]), np.array([[0, 0, 10, 10]], dtype=float), np.array([1]))
    assert correct[0].all() and not correct[1].any()  # a duplicate of a found target is a false positive
