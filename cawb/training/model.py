"""``cawb.YOLO``: ultralytics' ``YOLO`` that also builds the YOLOv5 v5.0 yamls and trains with cawb's trainers.

ultralytics' own ``YOLO("yolov5s-v5.0.yaml")`` would hand the yaml to its anchor-free parser; this subclass builds
it with :mod:`cawb.yolov5` (bundled names resolve, paths work) and makes cawb's trainer of each task the trainer of
that task (:data:`cawb.training.trainer.TASK_TRAINERS`): :class:`CawbDetectionTrainer` for detection, the one that
can build and train v5.0 models, ``CawbSegmentationTrainer`` for a ``yolo11n-seg.yaml``, and so on (with
``cawb: false`` each trains exactly as ultralytics' own).
Everything else is ultralytics': predict, val, export, and ``.pt`` checkpoints of either kind (a v5.0 ``best.pt``
also loads in ultralytics' plain ``YOLO``, which can predict, validate and export it but not train it further).
"""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO as UltralyticsYOLO
from ultralytics.utils import DEFAULT_CFG_DICT, RANK

from cawb.training.trainer import TASK_TRAINERS
from cawb.yolov5 import KIND_V5, model_kind, resolve_model_yaml
from cawb.yolov5.model import build_model

__all__ = ["YOLO"]


class YOLO(UltralyticsYOLO):
    """``YOLO(model)`` as in ultralytics; ``model`` may also be a v5.0 yaml (``"yolov5s-v5.0.yaml"`` or a path).

    Example::

        from cawb import YOLO

        YOLO("yolov5s-v5.0.yaml").train(data="data.yaml", epochs=150, optimizer="SGD", cawb=True,
                                        cawb_steps=[30, 80], cawb_step_scale=0.7, cawb_epoch_scale=4.0)
    """

    def _new(self, cfg: str, task: str | None = None, verbose: bool = False) -> None:
        if model_kind(cfg) != KIND_V5:
            return super()._new(cfg, task=task, verbose=verbose)
        path = str(resolve_model_yaml(cfg))
        self.cfg = path
        self.task = "detect"
        self.model = build_model(path, verbose=verbose and RANK == -1)
        self.overrides["model"] = path
        self.overrides["task"] = self.task
        self.model.args = {**DEFAULT_CFG_DICT, **self.overrides}  # as ultralytics' _new: lets a yaml model export
        self.model_name = cfg

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        task_map = super().task_map
        for task, trainer in TASK_TRAINERS.items():
            task_map[task] = {**task_map[task], "trainer": trainer}
        return task_map
