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
* ``plot_metrics``: also draws ``lr.png``, the planned lr curve with the lrs the run recorded;
* ``_setup_train``: skips ultralytics' AMP check when it would have to download its weights (CUDA only), and
  ``__init__`` provides local fonts before ultralytics' dataset check asks its server for one (see cawb.training.offline).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ultralytics.cfg import cfg2dict
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, IterableSimpleNamespace

from cawb.hyp import CAWB_HYP_KEYS, cawb_hyp_defaults, schedule_from_hyp
from cawb.lr_scheduler import CosineAnnealingWarmbootingLR
from cawb.schedule import CawbSchedule
from cawb.training.lr_curve import lr_curve
from cawb.training.offline import ensure_local_fonts, offline_amp_check
from cawb.utils.plots import plot_lr_curves

__all__ = ["CawbDetectionTrainer", "ultralytics_args"]


def ultralytics_args(args: IterableSimpleNamespace) -> IterableSimpleNamespace:
    """A copy of trainer args without the ``cawb_*`` keys, for ultralytics components that validate keys."""
    return IterableSimpleNamespace(**{k: v for k, v in vars(args).items() if k not in CAWB_HYP_KEYS})


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
        base = {**cawb_hyp_defaults(), **cfg2dict(cfg)}
        ensure_local_fonts()
        if overrides and not overrides.get("resume"):  # check before ultralytics creates the run directory
            merged = {**base, **overrides}
            schedule_from_hyp(merged, epochs=merged.get("epochs"), source="train args")
        super().__init__(base, overrides, _callbacks)
        for key, default in cawb_hyp_defaults().items():  # a resumed stock-ultralytics checkpoint lacks them
            if not hasattr(self.args, key):
                setattr(self.args, key, default)
        self._reported_dropped_restarts: tuple = ()
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
