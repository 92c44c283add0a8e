"""The recipe's keys in a trainer of any task: :class:`WarmupFloorMixin`.

The hyp files set the keys of YOLOv5 v5.0's recipe (:data:`cawb.yolov5.recipe.RECIPE_KEYS`) beside ultralytics'
own. Detection's trainer takes them with :class:`cawb.yolov5.trainer.V5RecipeMixin`, which also builds and trains
v5.0 models and applies v5.0's pipeline; the other tasks' trainers take only ``warmup_min_iters`` of them (the
others are named in a warning and left out when the run is planned: :func:`cawb.training.config.plan_run`).
"""

from __future__ import annotations

from typing import Any

from ultralytics.utils import DEFAULT_CFG

from cawb.utils.trainer_parts import AddedArgs, TrainerPart
from cawb.yolov5.recipe import RECIPE_KEYS, with_warmup_floor

__all__ = ["WarmupFloorMixin"]


class WarmupFloorMixin(TrainerPart):
    """``warmup_min_iters``: warmup lasts at least that many iterations, never into the last epoch (v5.0's
    1000-iteration floor; 0, the default, is ultralytics' own count)."""

    _floor_args = AddedArgs({"warmup_min_iters": RECIPE_KEYS["warmup_min_iters"][0]})

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict | None = None, _callbacks: Any = None):
        super().__init__(self._floor_args.widen(cfg), overrides, _callbacks)
        self._floor_args.fill(self.args)

    def _get_warmup_iterations(self, num_batches):
        return with_warmup_floor(super()._get_warmup_iterations(num_batches), vars(self.args), self.epochs, num_batches)

    def get_validator(self):
        with self._floor_args.hidden(self):
            return super().get_validator()
