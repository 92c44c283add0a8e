"""CAWB inside ultralytics' detection trainer: a thin subclass, no ultralytics code copied or edited.

The ``cawb_*`` keys ride in the trainer's ``args`` beside ultralytics' own, so they are saved in every checkpoint
(``train_args``), restored on resume and handed to multi-GPU DDP workers, which ultralytics rebuilds from
``vars(trainer.args)`` and the trainer class. What the subclass changes:

* ``__init__``: widens the base config with the CAWB keys, so ultralytics' key validation accepts them when they
  arrive as overrides (a new run, a DDP worker) or inside a checkpoint (resume);
* ``_setup_scheduler``: with ``cawb: true``, ``self.lf`` is the CAWB schedule and ``self.scheduler`` a
  :class:`CosineAnnealingWarmbootingLR`; ultralytics' warmup (``warmup_epochs``, ``warmup_bias_lr``,
  ``warmup_momentum``) ramps toward ``lr0 * lf(epoch)`` as usual. ultralytics' ``time=`` mode calls it again
  with a re-estimated epoch count, which rebuilds the schedule for the new length. With ``cawb: false`` it is
  ultralytics' own method, untouched;
* ``get_validator``: hands the validator ultralytics' keys only (its own key check would refuse ours);
* the YOLOv5 v5.0 models of :mod:`cawb.yolov5`: ``__init__`` checks that the loss settings suit the model's kind and
  gives a v5.0 model v5.0's recipe for what is unset (``cawb.hyp.hyp_for_model``, ``kind_defaults``); ``get_model``
  builds v5.0 yamls; ``_build_train_pipeline`` runs v5.0's AutoAnchor before training (``autoanchor``);
  ``set_class_weights`` leaves v5.0's ``cls_pw`` to its loss; ``_get_warmup_iterations`` applies
  ``warmup_min_iters`` (v5.0's 1000-iteration warmup floor) to both kinds of model;
* ``plot_metrics``: also draws ``lr.png``, the planned lr curve with the lrs the run recorded;
* exact resume (:mod:`cawb.training.exact_resume`): after each epoch ``last.pt.resume-state`` holds the
  full-precision model, EMA and optimizer, pending gradients, random states and data order, which resuming that
  ``last.pt`` restores; ``optimizer_step`` and the ``accumulate`` property keep the optimizer-step cadence;
* ``_setup_train``: skips ultralytics' AMP check when it would have to download its weights (CUDA only), and
  ``__init__`` provides local fonts before ultralytics' dataset check asks its server for one (see
  cawb.training.offline).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ultralytics.cfg import cfg2dict
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK, IterableSimpleNamespace
from ultralytics.utils.torch_utils import unwrap_model

from cawb.hyp import cawb_hyp_defaults, hyp_for_model, kind_defaults, recipe_key_defaults, schedule_from_hyp
from cawb.lr_scheduler import CosineAnnealingWarmbootingLR
from cawb.schedule import CawbSchedule
from cawb.training.exact_resume import ExactResume, make_order_resumable
from cawb.training.lr_curve import lr_curve, with_warmup_floor
from cawb.training.offline import ensure_local_fonts, offline_amp_check
from cawb.utils.plots import plot_lr_curves
from cawb.yolov5 import KIND_V5, model_kind
from cawb.yolov5.autoanchor import check_anchors
from cawb.yolov5.model import YOLOv5Model, build_model

__all__ = ["CawbDetectionTrainer", "added_key_defaults", "is_v5_model", "ultralytics_args"]


def added_key_defaults() -> dict:
    """The keys cawb adds to ultralytics' args (``cawb_*`` and the v5.0 recipe keys) with their defaults."""
    return {**cawb_hyp_defaults(), **recipe_key_defaults()}


def ultralytics_args(args: IterableSimpleNamespace) -> IterableSimpleNamespace:
    """A copy of trainer args without the keys cawb adds, for ultralytics components that validate keys."""
    return IterableSimpleNamespace(**{k: v for k, v in vars(args).items() if k not in added_key_defaults()})


def is_v5_model(model) -> bool:
    """Whether a (possibly DDP-wrapped) model is a YOLOv5 v5.0 one."""
    return isinstance(unwrap_model(model), YOLOv5Model)


class CawbDetectionTrainer(DetectionTrainer):
    """ultralytics' ``DetectionTrainer`` with the CAWB learning-rate schedule when ``cawb=True``.

    Use it like the stock trainer; the ``cawb_*`` keys are accepted beside ultralytics' own::

        from ultralytics import YOLO
        from cawb import CawbDetectionTrainer

        YOLO("yolov5s.yaml").train(trainer=CawbDetectionTrainer, data="data.yaml", epochs=150, optimizer="SGD",
                                   cawb=True, cawb_steps=[30, 80], cawb_step_scale=0.7, cawb_epoch_scale=4.0,
                                   cawb_lf_min=0.35)

    Raises:
        cawb.hyp.HypError: (a ValueError) an invalid ``cawb_*`` value, at construction, before any training.
    """

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        # ultralytics validates override keys against the base config's keys: make ours part of the base.
        base = {**added_key_defaults(), **cfg2dict(cfg)}
        ensure_local_fonts()
        if overrides and not overrides.get("resume"):  # check before ultralytics creates the run directory
            kind = model_kind(overrides.get("model") or "")
            overrides = {**kind_defaults(kind), **hyp_for_model(overrides, kind, source="train args")}
            merged = {**base, **overrides}
            schedule_from_hyp(merged, epochs=merged.get("epochs"), source="train args")
        super().__init__(base, overrides, _callbacks)
        for key, default in added_key_defaults().items():  # a resumed checkpoint of an older run lacks them
            if not hasattr(self.args, key):
                setattr(self.args, key, default)
        self._reported_dropped_restarts: tuple = ()
        self._anchors_checked = False
        self._exact_resume = ExactResume(self)
        self.cawb_schedule()  # fail now on a bad setting, not after the dataloaders are built

    def cawb_schedule(self) -> CawbSchedule | None:
        """The CAWB schedule for the current epoch count, or None when ``cawb`` is off."""
        return schedule_from_hyp(vars(self.args), epochs=self.epochs, source="train args")

    def _setup_scheduler(self):
        schedule = self.cawb_schedule()
        if schedule is None:
            super()._setup_scheduler()
            return
        if schedule.dropped_restart_epochs and schedule.dropped_restart_epochs != self._reported_dropped_restarts:
            self._reported_dropped_restarts = schedule.dropped_restart_epochs
            LOGGER.warning(
                f"cawb: restart epochs {list(schedule.dropped_restart_epochs)} are outside "
                f"(warmup_epochs={schedule.warmup_epochs:g}, epochs={schedule.epochs}) and are ignored"
            )
        self.lf = schedule
        self.scheduler = CosineAnnealingWarmbootingLR(self.optimizer, schedule=schedule)

    @contextlib.contextmanager
    def _ultralytics_args_only(self) -> Iterator[None]:
        args = self.args
        self.args = ultralytics_args(args)
        try:
            yield
        finally:
            self.args = args

    def _setup_train(self):
        with offline_amp_check():
            super()._setup_train()

    def _do_train(self, *args, **kwargs):
        try:
            return super()._do_train(*args, **kwargs)
        finally:  # stopped (Ctrl-C, an error) or finished: the last epoch's exact-resume state is on disk now
            self._exact_resume.wait()

    @property
    def accumulate(self) -> int:
        """Batches per optimizer step; until the first step after an exact resume, plus the offset that puts that
        step where the uninterrupted run made it (see cawb.training.exact_resume)."""
        exact_resume = getattr(self, "_exact_resume", None)
        return self._accumulate + (exact_resume.step_offset if exact_resume is not None else 0)

    @accumulate.setter
    def accumulate(self, value: int) -> None:
        self._accumulate = value

    def optimizer_step(self):
        super().optimizer_step()
        self._exact_resume.on_optimizer_step()

    def _get_warmup_iterations(self, num_batches):
        return with_warmup_floor(super()._get_warmup_iterations(num_batches), vars(self.args), self.epochs, num_batches)

    def get_model(self, cfg=None, weights=None, verbose=True):
        """ultralytics' detection model, or a YOLOv5 v5.0 one when ``cfg`` is a v5.0 yaml (name, path or dict)."""
        if cfg is None or model_kind(cfg) != KIND_V5:
            return super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        model = build_model(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model

    def set_class_weights(self):
        # v5.0's cls_pw is its class BCE's positive weight, not ultralytics' class-frequency power
        if not is_v5_model(self.model):
            super().set_class_weights()

    def _build_train_pipeline(self):
        super()._build_train_pipeline()
        make_order_resumable(self.train_loader)
        self._exact_resume.step_offset = 0  # ultralytics' OOM retry rebuilds the loaders and restarts its step count
        if not self._anchors_checked and is_v5_model(self.model):
            self._anchors_checked = True  # once: the OOM retry rebuilds the loaders, not the anchors
            if self.args.autoanchor and not self.resume:
                self.check_anchors()

    def check_anchors(self):
        """v5.0's AutoAnchor on the training labels, before the EMA copies the model (see cawb.yolov5.autoanchor)."""
        model = unwrap_model(self.model)
        head = model.model[-1]
        if RANK in {-1, 0}:
            result = check_anchors(head, self.train_loader.dataset.labels, imgsz=self.args.imgsz,
                                   anchor_t=self.args.anchor_t, seed=self.args.seed, log=LOGGER.info)
            if result.replaced:
                model.yaml["anchors"] = result.anchors.reshape(head.nl, -1).round(2).tolist()
                model.criterion = None  # rebuilt with the new anchors
        if self.world_size > 1:  # every rank trains with rank 0's anchors
            import torch.distributed as dist

            dist.broadcast(head.anchors, src=0)

    def get_validator(self):
        with self._ultralytics_args_only():
            validator = super().get_validator()
        return validator

    def plot_metrics(self):
        super().plot_metrics()
        self.plot_lr()

    def plot_lr(self):
        """Save ``lr.png`` in the run directory: the planned weights-group lr (in its schedule's colour, as in
        compare.py's figures) with the per-epoch lrs recorded (black markers)."""
        batches = len(self.train_loader) if getattr(self, "train_loader", None) is not None else None
        planned = lr_curve(vars(self.args), epochs=self.epochs, batches_per_epoch=batches, label="planned")
        results = self.read_results_csv()
        measured = []
        if results.get("lr/pg0") and results.get("epoch"):
            offset = 1 - 1 / batches if batches else 0.0  # results.csv holds the lr of each epoch's last batch
            epochs = [epoch - 1 + offset for epoch in results["epoch"]]
            measured.append(("recorded (results.csv lr/pg0)", epochs, results["lr/pg0"]))
        path = plot_lr_curves([planned], self.save_dir / "lr.png", title=f"{planned.schedule} learning rate",
                              measured=measured)
        self.on_plot(path)
