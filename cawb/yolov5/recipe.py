"""YOLOv5 v5.0's training recipe as settings: the keys cawb adds for it, their checks, and what a model of each kind
gets for the keys a hyp file leaves unset.

The loss keys mean what they mean for the model being trained: v5.0's for a v5.0 model (``box: 0.05``, ``cls_pw``
the class BCE's positive weight), ultralytics' for its anchor-free ones (``box: 7.5``, ``cls_pw`` a class-frequency
power). :func:`hyp_for_model` refuses settings meant for the other kind; :func:`kind_defaults` gives a v5.0 model
v5.0's values. :data:`RECIPE_KEYS` is the one list of the keys the recipe adds beside ultralytics' own.

The pipeline keys (:data:`PIPELINE_KEYS`) switch, for any model, each place where ultralytics' trainer does what
YOLOv5 v5.0's ``train.py`` did otherwise: their defaults in the trainer's args are ultralytics' behaviour (what its
models get), and a v5.0 model gets v5.0's (:data:`V5_RECIPE_DEFAULTS`).

Pure Python: no torch, no ultralytics.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from cawb.utils.checks import is_int, is_number
from cawb.utils.errors import HypError, InputError
from cawb.utils.ultralytics_compat import ULTRALYTICS_BOX_AR_THR, ULTRALYTICS_MAX_GRAD_NORM
from cawb.yolov5.sources import KIND_ULTRALYTICS, KIND_V5

__all__ = [
    "HUE_MODES",
    "PIPELINE_KEYS",
    "RECIPE_KEYS",
    "V5_RECIPE_DEFAULTS",
    "check_recipe_values",
    "fitness",
    "hyp_for_model",
    "kind_defaults",
    "recipe_key_defaults",
    "with_warmup_floor",
]

LOGGER = logging.getLogger("cawb")

#: Keys the recipe adds to ultralytics' training args, with their defaults there and their help. The v5.0 loss keys
#: default to None, "not set": the model's kind fills them in (:func:`kind_defaults`).
RECIPE_KEYS: dict[str, tuple[Any, str]] = {
    "obj": (None, "v5.0 models: objectness loss gain (v5.0: 1.0)"),
    "obj_pw": (None, "v5.0 models: positive weight of the objectness BCE (v5.0: 1.0)"),
    "anchor_t": (None, "v5.0 models: a target matches an anchor when its width and height ratios to it are both "
                       "below this (> 1; v5.0: 4.0); also AutoAnchor's threshold"),
    "fl_gamma": (None, "v5.0 models: focal loss gamma around both BCEs, 0 = off (v5.0: 0.0)"),
    "label_smoothing_eps": (None, "v5.0 models: class label smoothing eps in [0, 1): positive target 1 - eps/2, "
                                  "negative eps/2 (v5.0's --label-smoothing; ultralytics drops a key named "
                                  "label_smoothing from its settings)"),
    "autoanchor": (True, "v5.0 models: check the anchors on the training labels before training and refit them "
                         "when their best possible recall is below 0.98 (v5.0's AutoAnchor)"),
    "warmup_min_iters": (0, "warmup lasts at least this many iterations, max(round(warmup_epochs * batches), this), "
                            "never the last epoch (v5.0: 1000; 0 = ultralytics' own count)"),
}

#: How ``RandomHSV`` changes the hue: ``add`` shifts it by ``uniform(-1, 1) * hsv_h * 180`` (ultralytics),
#: ``multiply`` multiplies it by ``1 + uniform(-1, 1) * hsv_h``, as saturation and value (v5.0).
HUE_MODES = ("add", "multiply")

#: The pipeline keys: key -> (ultralytics' behaviour, v5.0's, help). Each works for any model.
PIPELINE_KEYS: dict[str, tuple[Any, Any, str]] = {
    "max_grad_norm": (ULTRALYTICS_MAX_GRAD_NORM, 0.0,
                      "clip the gradients' total norm to this before each optimizer step, 0 = never (v5.0: 0; "
                      "ultralytics: 10)"),
    "lr_epoch_lag": (False, True,
                     "true: epoch e >= 1 trains at the per-epoch schedule's value for e - 1, as a scheduler stepped "
                     "after each epoch (v5.0's train.py, the reference CAWB code); false: at its value for e "
                     "(ultralytics steps it at the epoch's start); the warmup ramps toward the value for e either way"),
    "mosaic_buffer": (True, False,
                      "true: mosaic draws its 3 partner images from the last min(batch x 8, 1000) images loaded "
                      "(ultralytics' buffer; the whole dataset with cache: ram); false: from the whole dataset (v5.0)"),
    "hsv_h_mode": ("add", "multiply", f"hue augmentation: {' or '.join(HUE_MODES)} (ultralytics: add, shifting the "
                                      "hue by up to hsv_h x 180; v5.0: multiply, by 1 +/- hsv_h)"),
    "box_ar_thr": (ULTRALYTICS_BOX_AR_THR, 20.0,
                   "after the random affine, boxes whose aspect ratio max(w/h, h/w) reaches this are dropped (> 1; "
                   "v5.0: 20; ultralytics: 100)"),
    "albumentations": (True, False,
                       "true: ultralytics' albumentations stage (blur, median blur, gray, CLAHE at p=0.01) when the "
                       "albumentations package is installed; false: none, installed or not (v5.0)"),
    "fitness_map50_weight": (0.0, 0.1,
                             "best.pt is the epoch with the highest w x mAP50 + (1 - w) x mAP50-95, w in [0, 1] "
                             "(v5.0: 0.1; ultralytics: 0, mAP50-95); early stopping (patience) follows it too"),
}
RECIPE_KEYS.update({key: (ultralytics, help_) for key, (ultralytics, _, help_) in PIPELINE_KEYS.items()})

#: What a v5.0 model gets for each key a hyp file and the command line leave unset. ``box``, ``cls`` and ``cls_pw``
#: then have v5.0's meaning; ``iou`` is the NMS IoU of the validation during training.
V5_RECIPE_DEFAULTS: dict[str, Any] = {
    "box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0,
    "label_smoothing_eps": 0.0, "iou": 0.6,
    **{key: v5 for key, (_, v5, _) in PIPELINE_KEYS.items()},
}

_V5_GAINS = ("box", "obj", "cls")
_V5_ONLY = ("obj", "obj_pw", "anchor_t", "fl_gamma", "label_smoothing_eps")  # set in a file: the file is v5.0's
_ULTRALYTICS_ONLY = ("dfl",)
# ultralytics' box gain is 7.5 (its tuner searches 1-20), v5.0's 0.05 (its evolution searched 0.02-0.2).
_BOX_SCALE_SPLIT = 1.0


def _number_check(minimum: float, maximum: float | None = None, *, open_min: bool = False,
                  open_max: bool = False) -> Callable[[Any], bool]:
    return lambda value: is_number(value, minimum, maximum, open_min=open_min, open_max=open_max)


# Value checks of the recipe keys (None is "not set"), with what is allowed; the v5.0-only ones in _V5_CHECKS.
_RECIPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "obj": (_number_check(0), "a number >= 0"),
    "obj_pw": (_number_check(0, open_min=True), "a number > 0"),
    "anchor_t": (_number_check(1, open_min=True), "a number > 1 (a ratio threshold: max(r, 1/r) is never below 1)"),
    "fl_gamma": (_number_check(0), "a number >= 0 (0 = no focal loss)"),
    "label_smoothing_eps": (_number_check(0, 1, open_max=True), "a number in [0, 1)"),
    "autoanchor": ((lambda value: isinstance(value, bool)), "true or false"),
    "warmup_min_iters": ((lambda value: is_int(value, 0)), "an integer >= 0"),
    "max_grad_norm": (_number_check(0), "a number >= 0 (0 = no clipping)"),
    "lr_epoch_lag": ((lambda value: isinstance(value, bool)), "true or false"),
    "mosaic_buffer": ((lambda value: isinstance(value, bool)), "true or false"),
    "hsv_h_mode": ((lambda value: value in HUE_MODES), " or ".join(HUE_MODES)),
    "box_ar_thr": (_number_check(1, open_min=True), "a number > 1 (an aspect ratio max(w/h, h/w) is never below 1)"),
    "albumentations": ((lambda value: isinstance(value, bool)), "true or false"),
    "fitness_map50_weight": (_number_check(0, 1), "a number in [0, 1]"),
}
_V5_CHECKS = {
    **_RECIPE_CHECKS,
    "box": (_number_check(0), "a number >= 0"),
    "cls": (_number_check(0), "a number >= 0"),
    "cls_pw": (_number_check(0, open_min=True), "a number > 0 (v5.0: the class BCE's positive weight)"),
}


def check_recipe_values(hyp: Mapping[str, Any], source: str, v5: bool = False) -> None:
    """Check the recipe keys set in ``hyp`` (and, for a v5.0 model, ``box``/``cls``/``cls_pw`` with v5.0's meaning).
    None is "not set" for the loss keys; a pipeline key must have a value.

    Raises:
        HypError: ``<source>: <key>=<value> is invalid: it must be <what>``.
    """
    for key, (valid, allowed) in (_V5_CHECKS if v5 else _RECIPE_CHECKS).items():
        if key not in hyp or (hyp[key] is None and key not in PIPELINE_KEYS):
            continue
        if not valid(hyp[key]):
            raise HypError(f"{source}: {key}={hyp[key]!r} is invalid: it must be {allowed}")


def recipe_key_defaults() -> dict[str, Any]:
    """The recipe keys (:data:`RECIPE_KEYS`) with their defaults in the trainer's args."""
    return {key: default for key, (default, _) in RECIPE_KEYS.items()}


def kind_defaults(kind: str) -> dict[str, Any]:
    """What a model of this kind gets for the keys a hyp file and the command line leave unset:
    :data:`V5_RECIPE_DEFAULTS` for ``"v5.0"`` models, nothing for ``"ultralytics"`` ones (ultralytics' defaults)."""
    if kind not in (KIND_V5, KIND_ULTRALYTICS):
        raise InputError(f"unknown model kind {kind!r}: {KIND_V5} or {KIND_ULTRALYTICS}")
    return dict(V5_RECIPE_DEFAULTS) if kind == KIND_V5 else {}


_ULTRALYTICS_WHOSE, _V5_WHOSE = "ultralytics'", "YOLOv5 v5.0's"


def _settings(hyp: Mapping[str, Any], keys) -> str:
    return ", ".join(f"{key}={hyp[key]!r}" for key in keys)


def _are_gains(keys, whose: str) -> str:
    return f"are {whose} loss gains" if len(keys) > 1 else f"is {whose} loss gain"


def hyp_for_model(hyp: Mapping[str, Any], kind: str, source: str = "hyp") -> dict[str, Any]:
    """Check that a hyp mapping's loss settings are meant for this kind of model; return what that model uses.

    * a ``"v5.0"`` model refuses ultralytics' loss gains (a ``box`` gain above 1, ultralytics' scale; ``dfl`` is
      simply unused) and checks the v5.0 values;
    * an ``"ultralytics"`` model refuses v5.0's gains (``box``/``cls``/``obj`` in a mapping that sets a v5.0-only key,
      or ``obj``, or a ``box`` gain below 1, v5.0's scale) and drops, with one warning, the v5.0-only keys it has no
      use for (``obj_pw``, ``anchor_t``, ``fl_gamma``, ``label_smoothing_eps``, and ``cls_pw`` beside them).

    A mapping that sets no loss key suits both. Unset keys are not filled in here (see :func:`kind_defaults`).

    Raises:
        HypError: one line naming the source, the settings and what the model takes instead.
    """
    kind_defaults(kind)  # checks the kind
    v5_only = [key for key in _V5_ONLY if hyp.get(key) is not None]
    box = hyp.get("box")
    if kind == KIND_V5:
        if is_number(box) and box > _BOX_SCALE_SPLIT:
            shown = [key for key in ("box", "cls", *_ULTRALYTICS_ONLY) if key in hyp]
            raise HypError(f"{source}: {_settings(hyp, shown)} {_are_gains(shown, _ULTRALYTICS_WHOSE)} (its "
                           "defaults: box 7.5, cls 0.5, dfl 1.5), meant for an anchor-free model; a v5.0 model has "
                           "v5.0's loss: remove them to get v5.0's gains (box 0.05, obj 1.0, cls 0.5) or set v5.0 "
                           "values")
        check_recipe_values(hyp, source, v5=True)
        return dict(hyp)
    gains = [key for key in _V5_GAINS if hyp.get(key) is not None]
    if "obj" in gains or (v5_only and gains) or (is_number(box) and box < _BOX_SCALE_SPLIT):
        raise HypError(f"{source}: {_settings(hyp, gains)} {_are_gains(gains, _V5_WHOSE)}, meant for a v5.0 "
                       "model (e.g. --cfg yolov5s-v5.0.yaml); this model is ultralytics' anchor-free one: remove them "
                       "to get its own gains (box 7.5, cls 0.5, dfl 1.5)")
    dropped = v5_only + (["cls_pw"] if v5_only and hyp.get("cls_pw") is not None else [])
    if dropped:
        LOGGER.warning("%s: v5.0 loss settings ignored by ultralytics' anchor-free model: %s", source,
                       _settings(hyp, dropped))
    return {key: value for key, value in hyp.items() if key not in dropped}


def fitness(map50: float, map50_95: float, map50_weight: float) -> float:
    """The fitness that picks best.pt: ``map50_weight * mAP50 + (1 - map50_weight) * mAP50-95`` (YOLOv5 v5.0's
    weights 0.1 and 0.9 at ``map50_weight`` 0.1; precision and recall weigh 0, as in v5.0)."""
    return map50_weight * map50 + (1.0 - map50_weight) * map50_95


def with_warmup_floor(iterations: int, hyp: Mapping[str, Any], epochs: int, batches_per_epoch: int) -> int:
    """ultralytics' warmup length ``iterations`` raised to the hyp's ``warmup_min_iters`` (v5.0's 1000-iteration
    floor): only when warmup is on, and never into the last epoch."""
    floor = hyp.get("warmup_min_iters") or 0
    if not iterations or floor <= iterations:
        return iterations
    return min(floor, max(epochs - 1, 0) * batches_per_epoch)
