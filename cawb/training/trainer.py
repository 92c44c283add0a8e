"""cawb's trainers: ultralytics' trainer of each task with cawb's parts, no ultralytics code copied or edited.

``CawbDetectionTrainer``, ``CawbSegmentationTrainer``, ``CawbPoseTrainer``, ``CawbOBBTrainer`` and
``CawbClassificationTrainer`` (:data:`TASK_TRAINERS` by task) are each one line over ultralytics' trainer of the task.
Each part is a mixin that works alone before any ultralytics trainer and adds its own settings to the trainer's
``args`` (so checkpoints, resume and DDP workers carry them):

* :class:`~cawb.training.cawb_mixin.CawbMixin`: the CAWB schedule (``cawb``, ``cawb_*``);
* :class:`~cawb.yolov5.trainer.V5RecipeMixin`: YOLOv5 v5.0's models, loss settings, AutoAnchor, warmup floor and
  pipeline (clipping, lr cadence, augmentation, best.pt fitness), and the gradient norm in results.csv;
* :class:`~cawb.training.durable.DurableCheckpointsMixin`: checkpoints written atomically and durably, one
  ``results.csv`` row per epoch after a resume;
* :class:`~cawb.training.exact_resume.ExactResumeMixin`: a resumed run repeats the stopped one (``exact_resume``);
* :class:`~cawb.training.lr_figure.LrFigureMixin`: ``lr.png``;
* :class:`~cawb.training.offline.OfflineMixin`: nothing is downloaded;
* :class:`~cawb.training.warmup_floor.WarmupFloorMixin`: the recipe's keys for the other tasks (their anchor-free
  models read ``warmup_min_iters`` of them; detection's ``V5RecipeMixin`` does that and more).
"""

from __future__ import annotations

from cawb.utils.ultralytics_compat import require_supported_ultralytics

require_supported_ultralytics()  # one line naming the version and the fix, not a missing hook in the middle of a run

from ultralytics.models.yolo.classify import ClassificationTrainer  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.models.yolo.obb import OBBTrainer  # noqa: E402
from ultralytics.models.yolo.pose import PoseTrainer  # noqa: E402
from ultralytics.models.yolo.segment import SegmentationTrainer  # noqa: E402

from cawb.training.cawb_mixin import CawbMixin
from cawb.training.durable import DurableCheckpointsMixin
from cawb.training.exact_resume import ExactResumeMixin
from cawb.training.lr_figure import LrFigureMixin
from cawb.training.offline import OfflineMixin
from cawb.training.warmup_floor import WarmupFloorMixin
from cawb.yolov5.trainer import V5RecipeMixin

__all__ = ["TASK_TRAINERS", "CawbClassificationTrainer", "CawbDetectionTrainer", "CawbOBBTrainer", "CawbPoseTrainer",
           "CawbSegmentationTrainer", "trainer_for_task"]


class CawbDetectionTrainer(OfflineMixin, DurableCheckpointsMixin, ExactResumeMixin, LrFigureMixin, CawbMixin,
                           V5RecipeMixin, DetectionTrainer):
    """ultralytics' ``DetectionTrainer`` with the CAWB learning-rate schedule when ``cawb=True``, YOLOv5 v5.0's
    models, durable checkpoints, exact resume and ``lr.png``.

    Use it like the stock trainer; the ``cawb_*`` keys are accepted beside ultralytics' own::

        from ultralytics import YOLO
        from cawb import CawbDetectionTrainer

        YOLO("yolov5s.yaml").train(trainer=CawbDetectionTrainer, data="data.yaml", epochs=150, optimizer="SGD",
                                   cawb=True, cawb_steps=[30, 80], cawb_step_scale=0.7, cawb_epoch_scale=4.0,
                                   cawb_lf_min=0.35)

    Raises:
        cawb.HypError: (a ValueError) an invalid ``cawb_*`` or loss setting, at construction, before any training.
    """


class CawbSegmentationTrainer(OfflineMixin, DurableCheckpointsMixin, ExactResumeMixin, LrFigureMixin, CawbMixin,
                              WarmupFloorMixin, SegmentationTrainer):
    """ultralytics' ``SegmentationTrainer`` with CAWB (``cawb=True``), durable checkpoints, exact resume, ``lr.png``
    and nothing downloaded; used as :class:`CawbDetectionTrainer` is."""


class CawbPoseTrainer(OfflineMixin, DurableCheckpointsMixin, ExactResumeMixin, LrFigureMixin, CawbMixin,
                      WarmupFloorMixin, PoseTrainer):
    """ultralytics' ``PoseTrainer`` (the data's ``kpt_shape``, the pose loss) with cawb's parts."""


class CawbOBBTrainer(OfflineMixin, DurableCheckpointsMixin, ExactResumeMixin, LrFigureMixin, CawbMixin,
                     WarmupFloorMixin, OBBTrainer):
    """ultralytics' ``OBBTrainer`` with cawb's parts."""


class CawbClassificationTrainer(OfflineMixin, DurableCheckpointsMixin, ExactResumeMixin, LrFigureMixin, CawbMixin,
                                WarmupFloorMixin, ClassificationTrainer):
    """ultralytics' ``ClassificationTrainer`` (``data`` is a folder of class folders) with cawb's parts."""


#: cawb's trainer of each task (see :data:`cawb.training.tasks.TASKS`).
TASK_TRAINERS = {"detect": CawbDetectionTrainer, "segment": CawbSegmentationTrainer, "pose": CawbPoseTrainer,
                 "obb": CawbOBBTrainer, "classify": CawbClassificationTrainer}


def trainer_for_task(task: str) -> type:
    """cawb's trainer of ``task`` (``detect``, ``segment``, ``pose``, ``obb``, ``classify``)."""
    return TASK_TRAINERS[task]
