"""cawb/yolov5/loss.py: v5.0's loss on hand-checked cases.

Predictions are all-zero logits unless said otherwise: every sigmoid is 0.5, so each predicted box sits at its
cell's centre (2 * 0.5 - 0.5 = 0.5) with exactly its anchor's size, and a BCE element with positive weight ``p``
and target ``t`` is ``log(2) * (p * t + 1 - t)``. The expected values below are worked out from that by hand.
"""

import math

import pytest
import torch

from cawb.yolov5.loss import UltralyticsBatchLoss, YOLOv5Loss, scaled_loss_gains

LOG2 = math.log(2)
HYP = dict(box=1.0, obj=1.0, cls=1.0, cls_pw=1.0, obj_pw=1.0, anchor_t=4.0, fl_gamma=0.0)


def one_level_loss(nc=1, anchor=(16, 16), **hyp):
    """One output level, stride 8, one anchor: a 64 px image is an 8 x 8 grid."""
    return YOLOv5Loss(nc, [list(anchor)], [8], {**HYP, **hyp})


def zeros(nc=1, batch=1, grid=(8, 8), anchors=1):
    return [torch.zeros(batch, anchors, grid[0], grid[1], 5 + nc)]


def target(x, y, w, h, cls=0, image=0):
    return torch.tensor([[image, cls, x, y, w, h]], dtype=torch.float32)


def matches(loss, targets, preds=None):
    """[(gx, gy, tx, ty)] per match, in the loss's order."""
    _, tbox, indices, _ = loss.build_targets(preds or zeros(loss.nc), targets)
    _, _, gj, gi = indices[0]
    return [(int(i), int(j), round(float(b[0]), 6), round(float(b[1]), 6)) for i, j, b in zip(gi, gj, tbox[0])]


def ciou(box1, box2):
    """CIoU of two (x, y, w, h) boxes, written out (Zheng et al. 2020)."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1, box2
    ix = max(0.0, min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2))
    iy = max(0.0, min(y1 + h1 / 2, y2 + h2 / 2) - max(y1 - h1 / 2, y2 - h2 / 2))
    inter = ix * iy
    iou = inter / (w1 * h1 + w2 * h2 - inter)
    cw = max(x1 + w1 / 2, x2 + w2 / 2) - min(x1 - w1 / 2, x2 - w2 / 2)
    ch = max(y1 + h1 / 2, y2 + h2 / 2) - min(y1 - h1 / 2, y2 - h2 / 2)
    rho2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = 4 / math.pi**2 * (math.atan(w2 / h2) - math.atan(w1 / h1)) ** 2
    alpha = v / (v - iou + 1)
    return iou - rho2 / (cw**2 + ch**2) - v * alpha


def test_a_centre_on_a_cell_border_takes_both_x_neighbours_and_the_right_one_is_the_centre_cell():
    # x = 2.0 cells: fractional part 0 < 0.5 and x > 1 gives the left cell; W - x = 6.0 likewise gives the right
    # one, which at 2.0 + 0.5 truncates back into cell 2. y = 4.5 cells: fractional part 0.5 is not < 0.5 either way.
    assert matches(one_level_loss(), target(0.25, 0.5625, 0.25, 0.25)) == [
        (2, 4, 0.0, 0.5),  # centre
        (1, 4, 1.0, 0.5),  # left: the box centre seen from cell 1
        (2, 4, 0.0, 0.5),  # right
    ]


def test_cells_are_clamped_to_the_grid_and_the_box_target_is_taken_from_the_clamped_cell():
    # x = 8.0 cells (the right edge): cell 8 is clamped to 7, and the target x from the cell corner is 1.0 (v5.0
    # clamped the indices in place, so the box target follows the clamp). Left: 8.0 - 0.5 truncates to 7. No right
    # (W - x = 0 is not > 1). y = 0: no top (y > 1 fails); H - y = 8 gives a bottom match at y + 0.5, cell 0, whose
    # x cell is clamped to 7 again.
    assert matches(one_level_loss(), target(1.0, 0.0, 0.25, 0.25)) == [
        (7, 0, 1.0, 0.0),  # centre
        (7, 0, 1.0, 0.0),  # left
        (7, 0, 1.0, 0.0),  # bottom
    ]


def test_anchor_t_rejects_a_target_whose_width_or_height_ratio_reaches_it():
    loss = one_level_loss()  # anchor 2 x 2 cells
    assert matches(loss, target(0.55, 0.55, 0.25 * 3.9, 0.25)) != []  # width ratio 3.9 < 4
    assert matches(loss, target(0.55, 0.55, 0.25 * 4.2, 0.25)) == []  # 4.2 >= 4: rejected
    assert matches(loss, target(0.55, 0.55, 0.25, 0.25 / 4.2)) == []  # height ratio 1/4.2: max(r, 1/r) = 4.2
    assert matches(one_level_loss(anchor_t=5.0), target(0.55, 0.55, 0.25 * 4.2, 0.25)) != []


def test_no_targets_leaves_the_objectness_loss_of_empty_cells_alone():
    loss = YOLOv5Loss(3, [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]],
                      [8, 16, 32], {**HYP, "obj": 0.7})
    preds = [torch.zeros(2, 3, 8 // s, 8 // s, 8) for s in (1, 2, 4)]
    total, items = loss(preds, torch.zeros(0, 6))
    obj = 0.7 * LOG2 * (4.0 + 1.0 + 0.4)  # BCE(0, 0) = log 2 on every cell, levels weighted 4.0, 1.0, 0.4
    assert items.tolist() == pytest.approx([0.0, obj, 0.0, obj], rel=1e-6)
    assert total.item() == pytest.approx(2 * obj, rel=1e-6)  # times the batch size


def test_a_prediction_equal_to_its_target_has_no_box_loss_and_objectness_target_one():
    # Centre at 3.5 cells (no neighbours: fractional parts are 0.5) and size = the anchor: the zero-logit
    # prediction is exactly the target, CIoU 1. obj_pw 2 makes the objectness target visible: log 2 * (1 + t).
    loss = one_level_loss(obj_pw=2.0)
    total, items = loss(zeros(), target(3.5 / 8, 3.5 / 8, 0.25, 0.25))
    box, obj, cls, _ = items.tolist()
    assert box == pytest.approx(0.0, abs=1e-6)
    assert obj == pytest.approx(4.0 * LOG2 * (1 + 1 / 64), rel=1e-5)  # one level: weight 4.0; 64 cells
    assert cls == 0.0  # one class: v5.0 has no class loss


def test_box_loss_and_objectness_target_are_ciou_against_the_box_seen_from_each_matched_cell():
    # Centre (2.25, 3.75) cells, size 3 x 1.5 cells, anchor 2 x 2: matches the centre cell (2, 3), its left cell
    # (1, 3) and its bottom cell (2, 4); the prediction in each is (0.5, 0.5, 2, 2) from that cell's corner.
    loss = one_level_loss(obj_pw=2.0, box=0.3)
    assert matches(loss, target(2.25 / 8, 3.75 / 8, 3 / 8, 1.5 / 8)) == [(2, 3, 0.25, 0.75), (1, 3, 1.25, 0.75),
                                                                         (2, 4, 0.25, -0.25)]
    ious = [ciou((0.5, 0.5, 2, 2), (tx, ty, 3, 1.5)) for tx, ty in ((0.25, 0.75), (1.25, 0.75), (0.25, -0.25))]
    _, items = loss(zeros(), target(2.25 / 8, 3.75 / 8, 3 / 8, 1.5 / 8))
    box, obj, _, _ = items.tolist()
    assert box == pytest.approx(0.3 * sum(1 - i for i in ious) / 3, rel=1e-5)
    assert obj == pytest.approx(4.0 * LOG2 * (1 + sum(max(i, 0) for i in ious) / 64), rel=1e-5)


def test_where_two_matches_write_one_objectness_cell_the_later_one_wins():
    # A: centre 3.7 x 3.5 cells -> cell (3, 3), and (fractional part of W - x = 0.3 < 0.5) its right cell (4, 3).
    # B: centre 4.2 x 3.5 -> cell (4, 3), and (fractional x 0.2 < 0.5) its left cell (3, 3). All centre matches come
    # first, then left, then right: at (3, 3) B's left match overwrites A's centre, at (4, 3) A's right match
    # overwrites B's centre. Both boxes 2 x 2 cells, as the anchor; y 3.5 has no neighbours.
    loss = one_level_loss(obj_pw=2.0)
    targets = torch.cat((target(3.7 / 8, 3.5 / 8, 0.25, 0.25), target(4.2 / 8, 3.5 / 8, 0.25, 0.25)))
    assert matches(loss, targets) == [(3, 3, 0.7, 0.5), (4, 3, 0.2, 0.5), (3, 3, 1.2, 0.5), (4, 3, -0.3, 0.5)]
    a_centre, b_centre, b_left, a_right = (ciou((0.5, 0.5, 2, 2), (x, 0.5, 2, 2)) for x in (0.7, 0.2, 1.2, -0.3))
    assert a_centre + b_centre != pytest.approx(b_left + a_right)
    _, items = loss(zeros(), targets)
    assert items[1].item() == pytest.approx(4.0 * LOG2 * (1 + (b_left + a_right) / 64), rel=1e-5)


def test_class_loss_with_label_smoothing_and_positive_weight():
    # 3 classes, eps 0.1: target 0.95 for the true class, 0.05 for the others; cls_pw 2 -> log 2 * (1 + t) each.
    loss = one_level_loss(nc=3, cls_pw=2.0, label_smoothing=0.1, cls=0.5)
    _, items = loss(zeros(nc=3), target(3.5 / 8, 3.5 / 8, 0.25, 0.25, cls=1))
    assert items[2].item() == pytest.approx(0.5 * LOG2 * (1.95 + 1.05 + 1.05) / 3, rel=1e-5)


def test_focal_loss_wraps_both_bces():
    # With zero logits p_t = 0.5 for any target, so each element is BCE * alpha_factor * 0.5**gamma, alpha_factor
    # = 0.25 t + 0.75 (1 - t). Objectness with no targets: t = 0 everywhere.
    gamma = 1.5
    loss = one_level_loss(fl_gamma=gamma)
    _, items = loss(zeros(), torch.zeros(0, 6))
    assert items[1].item() == pytest.approx(4.0 * LOG2 * 0.75 * 0.5**gamma, rel=1e-5)
    # Classes: 2 classes, true class t = 1 (alpha 0.25), the other t = 0 (alpha 0.75).
    loss = one_level_loss(nc=2, fl_gamma=gamma)
    _, items = loss(zeros(nc=2), target(3.5 / 8, 3.5 / 8, 0.25, 0.25, cls=0))
    assert items[2].item() == pytest.approx(LOG2 * (0.25 + 0.75) / 2 * 0.5**gamma, rel=1e-5)


def test_gains_are_scaled_as_v5_0_train_py_did():
    hyp = {"box": 0.05, "obj": 1.0, "cls": 0.5}
    assert scaled_loss_gains(hyp, nc=80, nl=3, imgsz=640) == pytest.approx({"box": 0.05, "obj": 1.0, "cls": 0.5})
    assert scaled_loss_gains(hyp, nc=3, nl=3, imgsz=320) == pytest.approx(
        {"box": 0.05, "obj": 0.25, "cls": 0.5 * 3 / 80})


def test_ultralytics_batch_becomes_v5_targets_and_named_loss_items():
    from cawb.yolov5 import build_model

    model = build_model("yolov5n-v5.0.yaml", nc=2)
    model.args = {**HYP, "box": 0.05, "cls": 0.5, "imgsz": 64, "label_smoothing_eps": 0.0}
    model.train()
    preds = model(torch.zeros(2, 3, 64, 64))
    batch = {"batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.tensor([[1.0], [0.0]]),
             "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.2], [0.25, 0.75, 0.1, 0.1]])}
    total, items = UltralyticsBatchLoss(model)(preds, batch)
    hyp = {**HYP, **scaled_loss_gains({"box": 0.05, "obj": 1.0, "cls": 0.5}, nc=2, nl=3, imgsz=64)}
    head = model.model[-1]
    direct_total, direct = YOLOv5Loss(2, head.anchors, head.stride, hyp)(
        preds, torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.2], [1, 0, 0.25, 0.75, 0.1, 0.1]]))
    assert list(items) == ["box_loss", "obj_loss", "cls_loss"]
    assert torch.allclose(torch.stack(list(items.values())), direct[:3]) and torch.allclose(total, direct_total)


def test_a_prediction_the_loss_scores_perfectly_decodes_to_the_target_box():
    """Loss space and inference space agree: logits that reproduce a matched cell's box target exactly (CIoU 1)
    decode, through the model's head, to the target box in pixels."""
    from cawb.yolov5 import build_model

    head = build_model("yolov5n-v5.0.yaml", nc=2).model[-1]
    loss = YOLOv5Loss(2, head.anchors, head.stride, HYP)
    targets = target(0.40, 0.55, 0.30, 0.20, cls=1)  # 64 px image: a 19.2 x 12.8 px box centred at (25.6, 35.2)
    raw = [torch.full((1, 3, 64 // s, 64 // s, 7), -12.0) for s in (8, 16, 32)]
    _, tbox, indices, anchors = loss.build_targets(raw, targets)
    b, a, gj, gi = (x[0] for x in indices[0])  # the centre match on the stride-8 level
    xy, wh = tbox[0][0, :2], tbox[0][0, 2:]
    logit = lambda p: torch.log(p / (1 - p))  # noqa: E731
    raw[0][b, a, gj, gi, :2] = logit((xy + 0.5) / 2)  # pxy = 2 * sigmoid - 0.5
    raw[0][b, a, gj, gi, 2:4] = logit((wh / anchors[0][0]).sqrt() / 2)  # pwh = (2 * sigmoid)^2 * anchor
    raw[0][b, a, gj, gi, 4:] = 12.0
    ps = raw[0][b, a, gj, gi]
    assert torch.allclose(torch.cat((ps[:2].sigmoid() * 2 - 0.5, (ps[2:4].sigmoid() * 2) ** 2 * anchors[0][0])),
                          tbox[0][0], atol=1e-5)

    y = head.decode(raw)[0]  # [4 + nc, N]
    best = y[4:].max(0).values.argmax()
    assert torch.allclose(y[:4, best], torch.tensor([25.6, 35.2, 19.2, 12.8]), atol=1e-3)
