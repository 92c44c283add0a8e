"""The recipe's keys in a trainer of any task: :class:`WarmupFloorMixin`.

The hyp files set the keys of YOLOv5 v5.0's recipe (:data:`cawb.yolov5.recipe.RECIPE_KEYS`) beside ultralytics'
own. Detection's trainer takes them with :class:`cawb.yolov5.trainer.V5RecipeMixin`, which also builds and trains
v5.0 models; the other tasks' models are all ultralytics' anchor-free ones, which read only ``warmup_min_iters``
of them (the v5.0 loss keys are dropped with a warning when the run is planned, as for an anchor-free detector).
"""

from __future__ import annotations

from typing import Any

from ultralytics.utils import DEFAULT_CFG

from cawb.utils.trainer_parts import AddedArgs, TrainerPart
from cawb.yolov5.recipe import recipe_key_defaults, with_warmup_floor

__all__ = ["WarmupFloorMixin"]


class WarmupFloorMixin(TrainerPart):
    """Accepts the recipe's keys and applies ``warmup_min_iters``: warmup lasts at least that many iterations, never
    into the last epoch (v5.0's 1000-iteration floor; 0, the default, is ultralytics' own count)."""

    _floor_args = AddedArgs(recipe_key_defaults())

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict | None = None, _callbacks: Any = None):
        super().__init__(self._floor_args.widen(cfg), overrides, _callbacks)
        self._floor_args.fill(self.args)

    def _get_warmup_iterations(self, num_batches):
        return with_warmup_floor(super()._get_warmup_iterations(num_batches), vars(self.args), self.epochs, num_batches)

    def get_validator(self):
        with self._floor_args.hidden(self):
            return super().get_validator()
