"""``cawb.YOLO``: ultralytics' ``YOLO`` that also builds the classic YOLOv5 yamls, reads the YOLOv5 repository's
checkpoints and trains with cawb's trainers.

ultralytics' own ``YOLO("yolov5s-v5.0.yaml")`` would hand the yaml to its anchor-free parser; this subclass builds
it with :mod:`cawb.yolov5` (bundled names resolve, paths work) and makes cawb's trainer of each task the trainer of
that task (:data:`cawb.training.trainer.TASK_TRAINERS`): :class:`CawbDetectionTrainer` for detection, the one that
can build and train classic models, ``CawbSegmentationTrainer`` for a ``yolo11n-seg.yaml``, and so on (with
``cawb: false`` each trains exactly as ultralytics' own). A ``.pt`` written by the YOLOv5 repository (v5.0 to
v7.0), which ultralytics cannot unpickle, is imported by :func:`cawb.yolov5.checkpoint_import.import_yolov5_checkpoint`,
both as the model (``YOLO("yolov5s.pt")``) and as weights to load (``.load("yolov5s.pt")``). Everything else is
ultralytics': predict, val, export, and ``.pt`` checkpoints of either kind (a classic ``best.pt`` also loads in
ultralytics' plain ``YOLO``, which can predict, validate and export it but not train it further).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics import YOLO as UltralyticsYOLO
from ultralytics.utils import DEFAULT_CFG_DICT, RANK

from cawb.training.trainer import TASK_TRAINERS
from cawb.yolov5 import KIND_V5, model_kind, resolve_model_yaml
from cawb.yolov5.checkpoint_import import import_yolov5_checkpoint, is_yolov5_checkpoint
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

    def _load(self, weights: str, task: str | None = None) -> None:
        if not is_yolov5_checkpoint(weights):
            return super()._load(weights, task=task)
        model = import_yolov5_checkpoint(weights)
        model.args, model.pt_path, model.task = {**DEFAULT_CFG_DICT, "task": "detect"}, str(weights), "detect"
        # as a load of a model object: train() starts from these weights; there is no ultralytics run to resume
        self.model, self.ckpt, self.ckpt_path, self.task = model, {"model": model}, None, "detect"
        self.overrides = model.args = self._reset_ckpt_args(model.args)
        self.overrides.update(model=weights, task="detect")
        self.model_name = weights

    def load(self, weights: Any) -> YOLO:
        """ultralytics' ``load``; a checkpoint of the YOLOv5 repository is imported first."""
        if isinstance(weights, (str, Path)) and is_yolov5_checkpoint(weights):
            weights = import_yolov5_checkpoint(weights)
        return super().load(weights)

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        task_map = super().task_map
        for task, trainer in TASK_TRAINERS.items():
            task_map[task] = {**task_map[task], "trainer": trainer}
        return task_map
