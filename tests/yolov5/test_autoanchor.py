"""cawb/yolov5/autoanchor.py: v5.0's best possible recall check and anchor refit."""

import numpy as np
import pytest

from cawb.yolov5 import build_model
from cawb.yolov5.autoanchor import best_possible_recall, check_anchors, fit_anchors, label_sizes


def labels_of(sizes_px, image=(640, 480)):
    """ultralytics-style labels: one image (h, w) = ``image`` per box size (w, h) in pixels, boxes centred."""
    h, w = image
    return [{"shape": (h, w), "bboxes": np.array([[0.5, 0.5, bw / w, bh / h]])} for bw, bh in sizes_px]


def test_label_sizes_are_taken_at_the_training_size_with_the_long_side_imgsz():
    labels = [{"shape": (320, 640), "bboxes": np.array([[0.5, 0.5, 0.1, 0.5]])}, {"shape": (10, 10), "bboxes": []}]
    assert label_sizes(labels, imgsz=320).tolist() == [[32.0, 80.0]]  # 640x320 image at 320: 0.1*320, 0.5*160


def test_best_possible_recall_by_hand():
    anchors = np.array([[10.0, 10.0], [40.0, 20.0]])
    wh = np.array([[10.0, 10.0], [50.0, 10.0], [200.0, 20.0]])
    # The metric is the worse of min(r, 1/r) over width and height, and must be above 1/anchor_t = 0.25.
    # Label 1: anchor 1 gives 1.0, anchor 2 gives min(10/40, 10/20) = 0.25, not above. Label 2: anchor 1 gives
    # 10/50 = 0.2, anchor 2 min(40/50, 10/20) = 0.5. Label 3: 10/200 and min(40/200, 20/20) = 0.2: none.
    bpr, per_target = best_possible_recall(anchors, wh, anchor_t=4.0)
    assert bpr == pytest.approx(2 / 3)
    assert per_target == pytest.approx((1 + 1 + 0) / 3)


def test_anchors_that_fit_the_labels_are_kept():
    model = build_model("yolov5n-v5.0.yaml", nc=1)
    head = model.model[-1]
    before = head.anchors.clone()
    sizes = head.anchors.view(-1, 2).tolist() * 20  # labels exactly the anchors' sizes
    result = check_anchors(head, labels_of(sizes, image=(640, 640)), imgsz=640, anchor_t=4.0, log=lambda m: None)
    assert result.bpr == 1.0 and not result.replaced and result.bpr_new is None
    assert (head.anchors == before).all()


def test_badly_fitting_anchors_are_refitted_in_stride_order_and_recall_improves():
    rng = np.random.default_rng(0)
    sizes = np.concatenate([rng.uniform(300, 600, (60, 1)) * [1, 0.05], rng.uniform(4, 8, (60, 2))])  # long thin, tiny
    model = build_model("yolov5n-v5.0.yaml", nc=1)
    head = model.model[-1]
    messages = []
    result = check_anchors(head, labels_of(sizes.tolist(), image=(640, 640)), imgsz=640, anchor_t=4.0, seed=1,
                           log=messages.append)
    assert result.bpr < 0.98 and result.replaced and result.bpr_new > result.bpr
    areas = head.anchors.prod(-1).view(-1)
    assert (areas[1:] >= areas[:-1]).all()  # small to large across the levels P3, P4, P5
    assert np.allclose(head.anchors.view(-1, 2).numpy(), result.anchors)
    assert any(f"{result.bpr:.4f} -> {result.bpr_new:.4f}" in m for m in messages)
    # The same seed gives the same anchors (a generator of its own, not the global one).
    again = build_model("yolov5n-v5.0.yaml", nc=1).model[-1]
    check_anchors(again, labels_of(sizes.tolist(), image=(640, 640)), imgsz=640, anchor_t=4.0, seed=1,
                  log=lambda m: None)
    assert (again.anchors == head.anchors).all()


def test_fit_needs_as_many_usable_labels_as_anchors():
    with pytest.raises(ValueError, match="fewer than the 9 anchors"):
        fit_anchors(np.array([[10.0, 10.0], [1.0, 1.0]]), 9, 4.0, np.random.default_rng(0))
