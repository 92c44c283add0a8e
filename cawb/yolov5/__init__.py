"""Classic YOLOv5 (releases v5.0 to v7.0: the network of the CAWB article and its successors) for ultralytics'
trainer.

What ultralytics builds from ``yolov5s.yaml`` today is the v6.0 backbone with its anchor-free head, DFL and the
task-aligned assigner. This package brings back YOLOv5's own anchor-based network and v5.0's loss (which v6.0-v7.0
kept) so that the one trainer (``cawb.training.trainer.CawbDetectionTrainer``) trains both kinds of model:

* :mod:`.model`: the bundled ``yolov5{n,s,m,l,x}-v5.0.yaml`` (``models/``; ``n`` is a CPU-sized convenience, not
  part of v5.0) and ``yolov5{n,s,m,l,x}-v7.0.yaml`` (v6.0's layout, kept to v7.0), :func:`build_model`, the
  anchor-based head :class:`AnchorDetect` and :class:`YOLOv5Model`, an ultralytics ``DetectionModel`` whose inference
  output has the shape ultralytics' validator, NMS, predictor and exporter expect; :mod:`.sources` finds the yamls,
  :func:`model_kind` (:mod:`.kind`) tells a classic model source (kind ``"v5.0"``) from an ultralytics one;
* :mod:`.loss`: :class:`YOLOv5Loss`, v5.0's loss with v5.0's contract, and the gain scaling of v5.0's train.py;
* :mod:`.autoanchor`: v5.0's AutoAnchor (best possible recall; k-means and evolution when it is below 0.98);
* :mod:`.recipe`: v5.0's recipe as settings (the keys it adds, their checks, each kind's defaults), with the
  pipeline keys that switch each place where ultralytics' trainer does otherwise than v5.0's;
* :mod:`.trainer`: :class:`~cawb.yolov5.trainer.V5RecipeMixin`, the trainer part that builds and trains them;
* :mod:`.checkpoint_import`: checkpoints written by the YOLOv5 repository, read without its code and converted;
* :mod:`.tta`: YOLOv5's test-time augmentation (``augment=True``).
* :mod:`.train_flags`: the flags of YOLOv5's train.py (v5.0 and v7.0) and what each is here (an alias, or refused).

May import: the schedule (``cawb.schedule``), ``cawb.utils``, torch, numpy and ultralytics (its building blocks, box
IoU, torch helpers and trainer). Not ``cawb.training`` or anything above it. torch and ultralytics load on first use
of :func:`build_model`, :class:`YOLOv5Loss`, the model classes or the trainer part, not on ``import cawb.yolov5``.
"""

from __future__ import annotations

__all__ = [
    "BUNDLED_MODELS",
    "KIND_ULTRALYTICS",
    "KIND_V5",
    "YOLOv5Loss",
    "YOLOv5Model",
    "build_model",
    "bundled_model_yaml",
    "model_kind",
    "resolve_model_yaml",
]

from cawb.yolov5.kind import model_kind  # noqa: E402  (no torch: --help and plan checks stay fast)
from cawb.yolov5.sources import (  # noqa: E402
    BUNDLED_MODELS,
    KIND_ULTRALYTICS,
    KIND_V5,
    bundled_model_yaml,
    resolve_model_yaml,
)


def __getattr__(name: str):
    if name in ("YOLOv5Model", "build_model"):
        from cawb.yolov5 import model

        return getattr(model, name)
    if name == "YOLOv5Loss":
        from cawb.yolov5.loss import YOLOv5Loss

        return YOLOv5Loss
    raise AttributeError(f"module 'cawb.yolov5' has no attribute {name!r}")
