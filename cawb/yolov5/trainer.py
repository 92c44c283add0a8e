"""YOLOv5 v5.0's recipe in an ultralytics detection trainer: :class:`V5RecipeMixin`.

Placed before ultralytics' ``DetectionTrainer``, it trains the v5.0 models of this package beside ultralytics' own:

* ``__init__`` checks that the loss settings suit the model's kind and gives a v5.0 model v5.0's values for what is
  unset (:func:`~cawb.yolov5.recipe.hyp_for_model`, :func:`~cawb.yolov5.recipe.kind_defaults`);
* ``get_model`` builds v5.0 yamls; ``set_class_weights`` leaves v5.0's ``cls_pw`` (a BCE positive weight) to its
  loss;
* ``get_dataloader`` runs v5.0's AutoAnchor on the training labels once the train loader is built, before the
  EMA copies the model (``autoanchor``);
* ``_get_warmup_iterations`` applies ``warmup_min_iters`` (v5.0's 1000-iteration warmup floor) to either kind of
  model;
* the pipeline keys (:data:`~cawb.yolov5.recipe.PIPELINE_KEYS`), for either kind: ``optimizer_step`` clips to
  ``max_grad_norm`` (0: not at all), ``lr_epoch_lag`` lags the per-epoch schedule, cos or CAWB, by one epoch,
  ``build_dataset`` configures the training augmentation (``mosaic_buffer``, ``hsv_h_mode``, ``box_ar_thr``,
  ``albumentations``) and ``validate`` weighs the fitness that picks best.pt (``fitness_map50_weight``);
* ``save_metrics`` adds to results.csv, for every model, the mean and the largest gradient norm of the epoch's
  optimizer steps before clipping (:data:`GRAD_NORM_COLUMNS`), so a run shows whether clipping engaged or would
  have.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from cawb.utils.trainer_parts import AddedArgs, TrainerPart
from cawb.utils.ultralytics_compat import (
    MAP50_95_KEY,
    MAP50_KEY,
    configure_train_augmentation,
    lag_epoch_schedule,
    model_names_for_load,
    optimizer_step,
)
from cawb.yolov5.autoanchor import check_anchors
from cawb.yolov5.kind import model_kind
from cawb.yolov5.model import YOLOv5Model, build_model
from cawb.yolov5.recipe import fitness, hyp_for_model, kind_defaults, recipe_key_defaults, with_warmup_floor
from cawb.yolov5.sources import KIND_V5

__all__ = ["GRAD_NORM_COLUMNS", "V5RecipeMixin", "grad_norm_summary", "is_v5_model"]

#: The results.csv columns of the gradient norm: its mean and its largest value over the epoch's optimizer steps,
#: taken after AMP's unscaling and before clipping (steps whose gradients overflowed, which the scaler skips, are
#: left out; NaN when no step counted).
GRAD_NORM_COLUMNS = ("train/grad_norm_mean", "train/grad_norm_max")


def grad_norm_summary(norms: Sequence[Any]) -> dict[str, float]:
    """:data:`GRAD_NORM_COLUMNS` for an epoch's norms (0-d tensors or numbers), the non-finite ones left out."""
    values = [float(norm) for norm in norms]  # one wait for the GPU per epoch, not per step
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return dict.fromkeys(GRAD_NORM_COLUMNS, math.nan)
    return dict(zip(GRAD_NORM_COLUMNS, (sum(finite) / len(finite), max(finite))))


def is_v5_model(model: Any) -> bool:
    """Whether a (possibly DDP-wrapped) model is a YOLOv5 v5.0 one."""
    return isinstance(unwrap_model(model), YOLOv5Model)


class V5RecipeMixin(TrainerPart):
    """The YOLOv5 v5.0 model, loss settings, AutoAnchor, warmup floor and pipeline keys for an ultralytics detection
    trainer, and the gradient norm in results.csv.

    Attributes:
        grad_norms: the gradient norm of each optimizer step of the current epoch so far (0-d tensors), before
            clipping.

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
        self.grad_norms: list[Any] = []
        self.add_callback("on_train_epoch_start", _forget_grad_norms)
        if self.args.lr_epoch_lag:
            lag_epoch_schedule(self)

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

    def optimizer_step(self):
        """ultralytics' step, clipping to ``max_grad_norm`` (0: not at all); the norm before clipping is kept."""
        self.grad_norms.append(optimizer_step(self, self.args.max_grad_norm).detach())

    def save_metrics(self, metrics):
        """results.csv's row, with the epoch's gradient norms (not in the file of a run begun before they were
        logged: its header would not match)."""
        if not self.csv.exists() or GRAD_NORM_COLUMNS[0] in _header(self.csv):
            metrics = {**metrics, **grad_norm_summary(self.grad_norms)}
        super().save_metrics(metrics)

    def validate(self):
        """ultralytics' validation; the fitness weighs mAP50 by ``fitness_map50_weight`` (0: ultralytics' own)."""
        best = self.best_fitness
        metrics, fitness_ = super().validate()
        weight = self.args.fitness_map50_weight
        if not weight or metrics is None or MAP50_KEY not in metrics:
            return metrics, fitness_
        fitness_ = fitness(metrics[MAP50_KEY], metrics[MAP50_95_KEY], weight)
        self.best_fitness = fitness_ if best is None or fitness_ > best else best
        return metrics, fitness_

    def build_dataset(self, img_path, mode="train", batch=None):
        dataset = super().build_dataset(img_path, mode=mode, batch=batch)
        if mode == "train":  # before the loader starts its workers, which take a copy of the dataset
            configure_train_augmentation(dataset, mosaic_buffer=self.args.mosaic_buffer,
                                         box_ar_thr=self.args.box_ar_thr,
                                         multiplicative_hue=self.args.hsv_h_mode == "multiply",
                                         albumentations=self.args.albumentations)
        return dataset


def _header(csv) -> str:
    with open(csv, encoding="utf-8") as handle:
        return handle.readline()


def _forget_grad_norms(trainer) -> None:
    trainer.grad_norms.clear()
