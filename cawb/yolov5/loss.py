"""YOLOv5 v5.0's loss: anchor matching with neighbour cells, CIoU box loss, objectness and class BCE.

:class:`YOLOv5Loss` keeps v5.0's contract (``ComputeLoss`` of v5.0's ``utils/loss.py``) so that it can be checked
against v5.0 number for number; :class:`UltralyticsBatchLoss` adapts it to ultralytics' trainer (its batch dict in,
``(loss, {"box_loss", "obj_loss", "cls_loss"})`` out) and scales the gains as v5.0's ``train.py`` did
(:func:`scaled_loss_gains`).

The matching, per level (sizes in grid cells of that level):

* target ``t`` goes to anchor ``a`` when ``max(r, 1/r) < anchor_t`` for both width and height, ``r = t / a``;
* each kept target also goes to up to two neighbour cells (offset 0.5 cell): left when the centre's fractional x is
  ``< 0.5`` and ``x > 1``, right when the fractional part of ``W - x`` is ``< 0.5`` and ``W - x > 1``, top and
  bottom alike in y. Cell indices are clamped to the grid, and the box target's xy is taken from the clamped cell
  (v5.0 clamped in place);
* the order is v5.0's: all centre matches (anchor-major, then target), then all left, top, right and bottom ones;
  where two matches write the same objectness cell, the later write wins (as PyTorch's indexed assignment does on
  the CPU).

Box loss: mean over matches of ``1 - CIoU``; objectness: BCE against ``clamp(CIoU, 0)`` at matched cells (gr = 1)
and 0 elsewhere, levels weighted 4.0, 1.0, 0.4; classes (only when ``nc > 1``): BCE against one-hot targets smoothed
by ``label_smoothing``; ``fl_gamma > 0`` wraps both BCEs in a focal loss (alpha 0.25). Everything is vectorised over
targets. CIoU is ultralytics' ``bbox_iou`` (v5.0's formula; v5.0 added its 1e-7 eps to the heights, ultralytics to
the areas only: they differ by ~1e-7).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from ultralytics.utils.metrics import bbox_iou

from cawb.utils.errors import InputError

__all__ = ["LOSS_NAMES", "UltralyticsBatchLoss", "YOLOv5Loss", "scaled_loss_gains"]

#: The loss items, as results.csv names them (``train/box_loss``, ...), in v5.0's order.
LOSS_NAMES = ("box_loss", "obj_loss", "cls_loss")

_OBJ_BALANCE = {3: (4.0, 1.0, 0.4)}  # per-level objectness weights; v5.0's P3-P7 list for other level counts
_OBJ_BALANCE_DEFAULT = (4.0, 1.0, 0.25, 0.06, 0.02)
_NEIGHBOUR_OFFSETS = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (-0.5, 0.0), (0.0, -0.5))  # centre, left, top, right, bottom
_HYP_KEYS = ("box", "obj", "cls", "cls_pw", "obj_pw", "anchor_t", "fl_gamma")


def _bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float, gamma: float) -> torch.Tensor:
    """Mean BCE with logits, optionally focal (v5.0's FocalLoss: alpha 0.25, TF-style modulating factor)."""
    weight = torch.tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    if gamma <= 0:
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight, reduction="none")
    prob = logits.sigmoid()
    p_t = target * prob + (1 - target) * (1 - prob)
    alpha = 0.25
    alpha_factor = target * alpha + (1 - target) * (1 - alpha)
    return (loss * alpha_factor * (1.0 - p_t) ** gamma).mean()


class YOLOv5Loss:
    """v5.0's loss, with v5.0's contract.

    Args:
        nc: number of classes.
        anchors: per level ``[w0, h0, w1, h1, ...]`` in input pixels, as in the model yaml (or a ``[nl, na, 2]``
            tensor), in stride order.
        strides: stride of each level in pixels (8, 16, 32).
        hyp: ``box``, ``obj``, ``cls`` (gains, applied as given: see :func:`scaled_loss_gains`), ``cls_pw``,
            ``obj_pw`` (BCE positive weights), ``anchor_t`` (matching threshold), ``fl_gamma`` (focal loss gamma,
            0 off) and optionally ``label_smoothing`` (eps, default 0).

    Call ``loss(preds, targets)``: ``preds`` the training outputs, one ``[B, na, ny, nx, 5 + nc]`` tensor of raw
    logits per level; ``targets`` ``[n, 6]`` = (image index, class, x, y, w, h), xywh normalised to the image. Returns
    ``(total * batch_size, tensor([box, obj, cls, total]))``, the second detached.
    """

    def __init__(self, nc: int, anchors: Sequence[Sequence[float]] | torch.Tensor, strides: Sequence[float],
                 hyp: Mapping[str, Any]):
        missing = [key for key in _HYP_KEYS if key not in hyp]
        if missing:
            raise KeyError(f"YOLOv5Loss: hyp lacks {', '.join(missing)}")
        self.nc = int(nc)
        self.nl = len(strides)
        anchors = torch.as_tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2)
        self.na = anchors.shape[1]
        self.strides = torch.as_tensor(strides, dtype=torch.float32).view(self.nl)
        self.anchors = anchors / self.strides.view(-1, 1, 1)  # in grid cells of each level, as the loss uses them
        self.hyp = dict(hyp)
        eps = float(hyp.get("label_smoothing", 0.0) or 0.0)
        self.cls_positive, self.cls_negative = 1.0 - 0.5 * eps, 0.5 * eps
        self.balance = _OBJ_BALANCE.get(self.nl, _OBJ_BALANCE_DEFAULT)
        self.gr = 1.0  # objectness target: (1 - gr) + gr * CIoU

    def __call__(self, preds: Sequence[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = preds[0].device
        hyp = self.hyp
        lbox = torch.zeros(1, device=device)
        lobj = torch.zeros(1, device=device)
        lcls = torch.zeros(1, device=device)
        tcls, tbox, indices, anchors = self.build_targets(preds, targets.to(device=device, dtype=torch.float32))
        for i, pi in enumerate(preds):
            pi = pi.float()
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], device=device)
            n = b.shape[0]
            if n:
                ps = pi[b, a, gj, gi]
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors[i]
                iou = bbox_iou(torch.cat((pxy, pwh), 1), tbox[i], xywh=True, CIoU=True).squeeze(-1)
                lbox += (1.0 - iou).mean()
                tobj[b, a, gj, gi] = (1.0 - self.gr) + self.gr * iou.detach().clamp(0)
                if self.nc > 1:
                    t = torch.full_like(ps[:, 5:], self.cls_negative)
                    t[torch.arange(n, device=device), tcls[i]] = self.cls_positive
                    lcls += _bce(ps[:, 5:], t, hyp["cls_pw"], hyp["fl_gamma"])
            lobj += _bce(pi[..., 4], tobj, hyp["obj_pw"], hyp["fl_gamma"]) * self.balance[i]
        lbox *= hyp["box"]
        lobj *= hyp["obj"]
        lcls *= hyp["cls"]
        batch_size = preds[0].shape[0]
        total = lbox + lobj + lcls
        return total * batch_size, torch.cat((lbox, lobj, lcls, total)).detach()

    def build_targets(self, preds: Sequence[torch.Tensor], targets: torch.Tensor):
        """Per level: class indices, box targets (xy from the cell corner, wh, in cells), (image, anchor, gy, gx)
        indices and the matched anchors (in cells)."""
        device = targets.device
        na, nt = self.na, targets.shape[0]
        anchor_index = torch.arange(na, device=device, dtype=torch.float32).view(na, 1).expand(na, nt)
        targets = torch.cat((targets.unsqueeze(0).expand(na, nt, 6), anchor_index[..., None]), 2)  # [na, nt, 7]
        offsets_table = torch.tensor(_NEIGHBOUR_OFFSETS, device=device)
        tcls, tbox, indices, anch = [], [], [], []
        for i in range(self.nl):
            anchors = self.anchors[i].to(device)
            _, _, ny, nx, _ = preds[i].shape
            gain = torch.tensor([1, 1, nx, ny, nx, ny, 1], device=device, dtype=torch.float32)
            t = targets * gain
            if nt:
                ratio = t[..., 4:6] / anchors[:, None]
                t = t[torch.max(ratio, 1 / ratio).max(2)[0] < self.hyp["anchor_t"]]  # [m, 7], anchor-major
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy
                left, top = ((gxy % 1 < 0.5) & (gxy > 1)).T
                right, bottom = ((gxi % 1 < 0.5) & (gxi > 1)).T
                keep = torch.stack((torch.ones_like(left), left, top, right, bottom))  # [5, m]
                t = t.repeat((5, 1, 1))[keep]
                offsets = (torch.zeros_like(gxy)[None] + offsets_table[:, None])[keep]
            else:
                t = targets[0]
                offsets = torch.zeros_like(t[:, 2:4])
            image, cls = t[:, :2].long().T
            gxy, gwh = t[:, 2:4], t[:, 4:6]
            gij = (gxy - offsets).long()
            gij[:, 0].clamp_(0, nx - 1)
            gij[:, 1].clamp_(0, ny - 1)
            a = t[:, 6].long()
            indices.append((image, a, gij[:, 1], gij[:, 0]))
            tbox.append(torch.cat((gxy - gij, gwh), 1))
            anch.append(anchors[a])
            tcls.append(cls)
        return tcls, tbox, indices, anch


def scaled_loss_gains(hyp: Mapping[str, Any], nc: int, nl: int, imgsz: int) -> dict[str, float]:
    """The gains as v5.0's train.py handed them to the loss: ``box * 3/nl``, ``cls * nc/80 * 3/nl``,
    ``obj * (imgsz/640)^2 * 3/nl``."""
    return {
        "box": hyp["box"] * 3 / nl,
        "cls": hyp["cls"] * nc / 80 * 3 / nl,
        "obj": hyp["obj"] * (imgsz / 640) ** 2 * 3 / nl,
    }


class UltralyticsBatchLoss:
    """:class:`YOLOv5Loss` as a ``YOLOv5Model``'s criterion inside ultralytics' trainer and validator.

    It reads the recipe from the model's ``args`` (the trainer's args: ``box``, ``obj``, ``cls``, ``cls_pw``,
    ``obj_pw``, ``anchor_t``, ``fl_gamma``, ``label_smoothing_eps``, ``imgsz``), scales the gains as v5.0's train.py
    did, turns ultralytics' batch (``batch_idx``, ``cls``, ``bboxes``) into v5.0's targets and returns
    ``(total * batch_size, {"box_loss", "obj_loss", "cls_loss"})``. Predictions may be the training list or the
    ``(y, raw)`` inference tuple (validation loss).
    """

    def __init__(self, model: nn.Module):
        head = model.model[-1]
        args = getattr(model, "args", None) or {}
        args = args if isinstance(args, Mapping) else vars(args)
        missing = [key for key in _HYP_KEYS if args.get(key) is None]
        if missing:
            raise InputError(f"cawb.yolov5: the model's args lack the v5.0 loss settings {', '.join(missing)} (train "
                             "it with cawb's trainer, which sets them)")
        imgsz = args.get("imgsz", 640)
        imgsz = max(imgsz) if isinstance(imgsz, (list, tuple)) else imgsz
        hyp = {key: args[key] for key in _HYP_KEYS}
        hyp["label_smoothing"] = args.get("label_smoothing_eps") or 0.0  # v5.0's name in its loss
        hyp.update(scaled_loss_gains(hyp, head.nc, head.nl, imgsz))
        self.loss = YOLOv5Loss(head.nc, head.anchors.detach().float().cpu(), head.stride.detach().float().cpu(), hyp)

    def __call__(self, preds, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raw = preds[1] if isinstance(preds, tuple) else preds
        targets = torch.cat((batch["batch_idx"].view(-1, 1).float(), batch["cls"].view(-1, 1).float(),
                             batch["bboxes"].float()), 1)
        loss, items = self.loss(raw, targets)
        return loss, dict(zip(LOSS_NAMES, items[:3]))

