"""v5.0's AutoAnchor: check the anchors against the training labels before training, refit them when they fit badly.

The check (v5.0's ``check_anchors``): each label's size at the training image size (long side = ``imgsz``, times a
random scale in [0.9, 1.1]) is matched to its best anchor by the ratio metric ``min(r, 1/r)`` over width and
height; the best possible recall (BPR) is the fraction of labels whose best anchor is within ``anchor_t``. Below
0.98, new anchors are fitted (v5.0's ``kmean_anchors``): k-means on the whitened label sizes (labels under 2 pixels
left out), then 1000 generations of an evolutionary refinement (mutation probability 0.9, sigma 0.1) of the fitness
``mean(best * (best > 1/anchor_t))``. The new anchors are kept only if their BPR is higher; both recalls are logged.

Differences from v5.0, on purpose: the random numbers come from a generator seeded with the run's seed (v5.0 drew
from the global one, so the check changed with everything drawn before it), and k-means is a small NumPy Lloyd's
algorithm with 30 restarts, as SciPy's ``kmeans(iter=30)`` that v5.0 called (SciPy is not a dependency here).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from cawb.utils.errors import InputError

__all__ = ["AnchorCheck", "best_possible_recall", "check_anchors", "fit_anchors", "label_sizes"]

BPR_THRESHOLD = 0.98  # v5.0 refits below this best possible recall


@dataclasses.dataclass(frozen=True)
class AnchorCheck:
    """What the check found: recalls before and after (``bpr_new`` None when no fit was tried), the anchors per
    target above threshold, and whether the model's anchors were replaced."""

    bpr: float
    anchors_per_target: float
    bpr_new: float | None
    replaced: bool
    anchors: np.ndarray  # [nl * na, 2] pixels, the anchors the model has after the check


def label_sizes(labels: Sequence[dict[str, Any]], imgsz: int) -> np.ndarray:
    """Label widths and heights ``[n, 2]`` in pixels with each image resized so its long side is ``imgsz``.

    ``labels`` are ultralytics dataset labels: ``shape`` (h, w) and ``bboxes`` (normalised xywh).
    """
    sizes = []
    for label in labels:
        boxes = np.asarray(label.get("bboxes", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            continue
        h, w = label["shape"]
        scale = imgsz / max(h, w)
        sizes.append(boxes[:, 2:4] * np.array([w * scale, h * scale]))
    return np.concatenate(sizes, 0) if sizes else np.zeros((0, 2))


def _ratio_metric(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``[n, k]``: for each label and anchor, the worse of the width and height ratios ``min(r, 1/r)``."""
    r = wh[:, None] / anchors[None]
    return np.minimum(r, 1 / r).min(2)


def best_possible_recall(anchors: np.ndarray, wh: np.ndarray, anchor_t: float) -> tuple[float, float]:
    """``(bpr, anchors per target)``: the share of labels with an anchor within ``anchor_t``, and how many anchors
    each label has within it on average."""
    if not len(wh):
        return 1.0, 0.0
    x = _ratio_metric(wh, anchors)
    threshold = 1 / anchor_t
    return float((x.max(1) > threshold).mean()), float((x > threshold).sum(1).mean())


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 30, iterations: int = 100):
    best, best_distortion = None, np.inf
    for _ in range(restarts):
        centres = points[rng.choice(len(points), k, replace=False)]
        previous = np.inf
        for _ in range(iterations):
            distance = np.linalg.norm(points[:, None] - centres[None], axis=2)
            nearest = distance.argmin(1)
            distortion = distance[np.arange(len(points)), nearest].mean()
            for j in range(k):
                members = points[nearest == j]
                if len(members):
                    centres[j] = members.mean(0)
            if previous - distortion < 1e-5:
                break
            previous = distortion
        if distortion < best_distortion:
            best, best_distortion = centres.copy(), distortion
    return best


def fit_anchors(wh: np.ndarray, n: int, anchor_t: float, rng: np.random.Generator, generations: int = 1000):
    """``n`` anchors ``[n, 2]`` (pixels, smallest area first) fitted to label sizes: k-means, then evolution.

    Raises:
        ValueError: fewer usable labels (>= 2 pixels on a side) than anchors.
    """
    threshold = 1 / anchor_t
    kept = wh[(wh >= 2.0).any(1)]
    if len(kept) < n:
        raise InputError(f"{len(kept)} labels of 2 pixels or more, fewer than the {n} anchors to fit")
    sigma = kept.std(0)
    anchors = _kmeans(kept / sigma, n, rng) * sigma

    def fitness(candidate: np.ndarray) -> float:
        best = _ratio_metric(kept, candidate).max(1)
        return float((best * (best > threshold)).mean())

    score = fitness(anchors)
    for _ in range(generations):
        change = np.ones(anchors.shape)
        while (change == 1).all():  # mutate until something changes
            change = ((rng.random(anchors.shape) < 0.9) * rng.random() * rng.standard_normal(anchors.shape) * 0.1
                      + 1).clip(0.3, 3.0)
        candidate = (anchors * change).clip(min=2.0)
        candidate_score = fitness(candidate)
        if candidate_score > score:
            anchors, score = candidate, candidate_score
    return anchors[np.argsort(anchors.prod(1))]


def check_anchors(head, labels: Sequence[dict[str, Any]], imgsz: int, anchor_t: float, seed: int = 0,
                  log=print) -> AnchorCheck:
    """Check a :class:`cawb.yolov5.model.AnchorDetect` head's anchors on training labels; refit and replace them in
    place when the best possible recall is below 0.98 and the fit recalls more. ``log`` receives the messages."""
    import torch

    rng = np.random.default_rng(seed)
    current = head.anchors.detach().cpu().double().view(-1, 2).numpy()
    wh = label_sizes(labels, imgsz)
    scaled = wh * rng.uniform(0.9, 1.1, size=(len(wh), 1))  # v5.0 checks against slightly rescaled labels
    bpr, aat = best_possible_recall(current, scaled, anchor_t)
    log(f"autoanchor: {aat:.2f} anchors/target, best possible recall {bpr:.4f} (anchor_t {anchor_t:g}, "
        f"{len(wh)} labels at imgsz {imgsz})")
    if bpr >= BPR_THRESHOLD:
        return AnchorCheck(bpr, aat, None, False, current)
    log(f"autoanchor: recall below {BPR_THRESHOLD}: fitting {len(current)} anchors (k-means, then evolution)...")
    try:
        fitted = fit_anchors(wh, len(current), anchor_t, rng)
    except ValueError as error:
        log(f"autoanchor: cannot fit anchors ({error}); keeping the original anchors")
        return AnchorCheck(bpr, aat, None, False, current)
    fitted = torch.tensor(fitted, dtype=torch.float32).half().float()  # the precision checkpoints store
    bpr_new = best_possible_recall(fitted.double().numpy(), scaled, anchor_t)[0]
    if bpr_new <= bpr:
        log(f"autoanchor: new anchors recall {bpr_new:.4f}, not better than {bpr:.4f}; keeping the original anchors")
        return AnchorCheck(bpr, aat, bpr_new, False, current)
    with torch.no_grad():
        head.anchors.copy_(fitted.view_as(head.anchors).to(head.anchors.device))
        head.check_anchor_order()
    new = head.anchors.detach().cpu().double().view(-1, 2).numpy()
    log(f"autoanchor: best possible recall {bpr:.4f} -> {bpr_new:.4f} with new anchors "
        f"{np.round(new).astype(int).tolist()} (saved in the model and its checkpoints)")
    return AnchorCheck(bpr, aat, bpr_new, True, new)
