"""CAWB in any ultralytics trainer: :class:`CawbMixin`.

Placed before an ultralytics trainer class, it makes ``cawb: true`` train with the CAWB schedule::

    from ultralytics.models.yolo.segment import SegmentationTrainer
    from cawb.training.cawb_mixin import CawbMixin

    class CawbSegmentationTrainer(CawbMixin, SegmentationTrainer):
        pass

With ``cawb: true``, ``self.lf`` is the :class:`~cawb.schedule.CawbSchedule` and ``self.scheduler`` a
:class:`~cawb.lr_scheduler.CosineAnnealingWarmbootingLR` over it; ultralytics' warmup (``warmup_epochs``,
``warmup_bias_lr``, ``warmup_momentum``) ramps toward ``lr0 * lf(epoch)`` as usual. ultralytics' ``time=`` mode sets
the scheduler up again with a re-estimated epoch count, which rebuilds the schedule for the new length. With
``cawb: false`` the trainer is ultralytics' own.
"""

from __future__ import annotations

from typing import Any

from ultralytics.utils import DEFAULT_CFG, LOGGER

from cawb.lr_scheduler import CosineAnnealingWarmbootingLR
from cawb.schedule import CawbSchedule, restart_rule
from cawb.training.hyp import cawb_hyp_defaults, schedule_from_hyp
from cawb.utils.trainer_parts import AddedArgs, TrainerPart

__all__ = ["CawbMixin"]


class CawbMixin(TrainerPart):
    """The CAWB learning-rate schedule for an ultralytics trainer, switched on by ``cawb: true``.

    Raises:
        HypError: (a ValueError) an invalid ``cawb_*`` value, at construction, before any training.
    """

    _cawb_args = AddedArgs(cawb_hyp_defaults())

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict | None = None, _callbacks: Any = None):
        config = self.run_config
        checked = config is not None and config.resume is None
        schedule = config.schedule if checked else None
        if not checked and overrides and not overrides.get("resume"):  # before ultralytics creates the run dir
            merged = {**self._cawb_args.widen(cfg), **overrides}
            schedule = schedule_from_hyp(merged, epochs=merged.get("epochs"), source="train args")
            checked = True
        super().__init__(self._cawb_args.widen(cfg), overrides, _callbacks)
        self._cawb_args.fill(self.args)
        if not checked:  # a resume: the checkpoint's settings, read by ultralytics just now
            schedule = schedule_from_hyp(vars(self.args), epochs=self.epochs, source="train args")
        self._cawb_schedule = schedule
        self._reported_dropped_restarts: tuple = ()

    def cawb_schedule(self) -> CawbSchedule | None:
        """The CAWB schedule for the current epoch count, or None when ``cawb`` is off."""
        schedule = self._cawb_schedule
        if schedule is not None and schedule.epochs != self.epochs:  # time= mode re-estimated the epochs
            schedule = self._cawb_schedule = schedule_from_hyp(vars(self.args), epochs=self.epochs,
                                                               source="train args")
        return schedule

    def _setup_scheduler(self):
        schedule = self.cawb_schedule()
        if schedule is None:
            super()._setup_scheduler()
            return
        if schedule.dropped_restart_epochs and schedule.dropped_restart_epochs != self._reported_dropped_restarts:
            self._reported_dropped_restarts = schedule.dropped_restart_epochs
            LOGGER.warning(
                f"cawb: restart epochs {list(schedule.dropped_restart_epochs)} are outside this run (only "
                f"{restart_rule(schedule.warmup_epochs, schedule.epochs)} count) and are ignored"
            )
        self.lf = schedule
        self.scheduler = CosineAnnealingWarmbootingLR(self.optimizer, schedule=schedule)

    def get_validator(self):
        with self._cawb_args.hidden(self):
            return super().get_validator()
