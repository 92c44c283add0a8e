"""YOLOv5 v5.0's recipe in an ultralytics detection trainer: :class:`V5RecipeMixin`.

Placed before ultralytics' ``DetectionTrainer``, it trains the v5.0 models of this package beside ultralytics' own:

* ``__init__`` checks that the loss settings suit the model's kind and gives a v5.0 model v5.0's values for what is
  unset (:func:`~cawb.yolov5.recipe.hyp_for_model`, :func:`~cawb.yolov5.recipe.kind_defaults`);
* ``get_model`` builds v5.0 yamls; ``set_class_weights`` leaves v5.0's ``cls_pw`` (a BCE positive weight) to its
  loss;
* ``get_dataloader`` runs v5.0's AutoAnchor on the training labels once the train loader is built, before the
  EMA copies the model (``autoanchor``);
* ``_get_warmup_iterations`` applies ``warmup_min_iters`` (v5.0's 1000-iteration warmup floor) to either kind of
  model.
"""

from __future__ import annotations

from typing import Any

from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from cawb.utils.trainer_parts import AddedArgs, TrainerPart
from cawb.utils.ultralytics_compat import model_names_for_load
from cawb.yolov5.autoanchor import check_anchors
from cawb.yolov5.kind import model_kind
from cawb.yolov5.model import YOLOv5Model, build_model
from cawb.yolov5.recipe import hyp_for_model, kind_defaults, recipe_key_defaults, with_warmup_floor
from cawb.yolov5.sources import KIND_V5

__all__ = ["V5RecipeMixin", "is_v5_model"]


def is_v5_model(model: Any) -> bool:
    """Whether a (possibly DDP-wrapped) model is a YOLOv5 v5.0 one."""
    return isinstance(unwrap_model(model), YOLOv5Model)


class V5RecipeMixin(TrainerPart):
    """The YOLOv5 v5.0 model, loss settings, AutoAnchor and warmup floor for an ultralytics detection trainer.

    Raises:
        HypError: (a ValueError) loss settings meant for the other kind of model, at construction.
    """

    _recipe_args = AddedArgs(recipe_key_defaults())

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict | None = None, _callbacks: Any = None):
        if self.run_config is None and overrides and not overrides.get("resume"):  # before the run dir is made
            kind = model_kind(overrides.get("model") or "")
            overrides = {**kind_defaults(kind), **hyp_for_model(overrides, kind, source="train args")}
        super().__init__(self._recipe_args.widen(cfg), overrides, _callbacks)
        self._recipe_args.fill(self.args)
        self._anchors_checked = False

    def _get_warmup_iterations(self, num_batches):
        return with_warmup_floor(super()._get_warmup_iterations(num_batches), vars(self.args), self.epochs, num_batches)

    def get_model(self, cfg=None, weights=None, verbose=True):
        """ultralytics' detection model, or a YOLOv5 v5.0 one when ``cfg`` is a v5.0 yaml (name, path or dict)."""
        if cfg is None or model_kind(cfg) != KIND_V5:
            return super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        model = build_model(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        model = model_names_for_load(self, model)
        if weights:
            model.load(weights)
        return model

    def set_class_weights(self):
        # v5.0's cls_pw is its class BCE's positive weight, not ultralytics' class-frequency power
        if not is_v5_model(self.model):
            super().set_class_weights()

    def get_dataloader(self, dataset_path, batch_size=16, rank=0, mode="train"):
        loader = super().get_dataloader(dataset_path, batch_size=batch_size, rank=rank, mode=mode)
        if mode == "train" and not self._anchors_checked and is_v5_model(self.model):
            self._anchors_checked = True  # once: ultralytics' OOM retry rebuilds the loaders, not the anchors
            if self.args.autoanchor and not self.resume:
                self.check_anchors(loader.dataset.labels)
        return loader

    def check_anchors(self, labels):
        """v5.0's AutoAnchor on the training ``labels`` (ultralytics' dataset labels), before the EMA copies the
        model (see cawb.yolov5.autoanchor)."""
        model = unwrap_model(self.model)
        head = model.model[-1]
        if RANK in {-1, 0}:
            result = check_anchors(head, labels, imgsz=self.args.imgsz,
                                   anchor_t=self.args.anchor_t, seed=self.args.seed, log=LOGGER.info)
            if result.replaced:
                model.yaml["anchors"] = result.anchors.reshape(head.nl, -1).round(2).tolist()
                model.criterion = None  # rebuilt with the new anchors
        if self.world_size > 1:  # every rank trains with rank 0's anchors
            import torch.distributed as dist

            dist.broadcast(head.anchors, src=0)

    def get_validator(self):
        with self._recipe_args.hidden(self):
            return super().get_validator()
