"""Hyperparameter (hyp) YAML files: ultralytics' own keys plus the ``cawb_*`` keys, validated at the edge.

A hyp file is a flat mapping. Every key of ultralytics' ``default.yaml`` is accepted as is; the CAWB keys and the
recipe keys of YOLOv5 v5.0 (``obj``, ``obj_pw``, ``anchor_t``, ``fl_gamma``, ``label_smoothing_eps``, ``autoanchor``,
``warmup_min_iters``) are added beside them. Anything else fails before training starts, naming the key and the
closest valid one.

The loss keys mean what they mean for the model being trained: v5.0's for a v5.0 model (``box: 0.05``), ultralytics'
for its anchor-free ones (``box: 7.5``); :func:`hyp_for_model` refuses a hyp meant for the other kind, and
:func:`kind_defaults` gives a v5.0 model v5.0's values for what a hyp leaves unset.

This module is the one list of the hyp keys cawb adds (:data:`CAWB_HYP_KEYS`, :data:`RECIPE_KEYS`) and of their
defaults (the CAWB ones taken from :class:`CawbSchedule`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import logging
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from cawb.schedule import BUILTIN_DECAYS, EPOCH_SCALE_MODES, CawbConfigError, CawbSchedule
from cawb.utils.user_files import UserFileError, read_yaml

__all__ = [
    "CAWB_HYP_KEYS",
    "HypError",
    "RECIPE_KEYS",
    "V5_RECIPE_DEFAULTS",
    "YOLOV5_DROPPED_KEYS",
    "cawb_hyp_defaults",
    "hyp_for_model",
    "kind_defaults",
    "load_hyp",
    "recipe_key_defaults",
    "resolve_lf",
    "schedule_from_hyp",
    "ultralytics_defaults",
    "validate_hyp",
]

LOGGER = logging.getLogger("cawb")


class HypError(ValueError):
    """A bad hyp file or hyp value; the message is one line naming the source, the key and what is allowed."""


@dataclasses.dataclass(frozen=True)
class HypKey:
    """One ``cawb_*`` hyp key: the :class:`CawbSchedule` field it sets (None for the on/off switch) and its help."""

    field: str | None
    help: str


#: The CAWB hyp keys, in the order they are documented. Defaults come from :func:`cawb_hyp_defaults`.
CAWB_HYP_KEYS: dict[str, HypKey] = {
    "cawb": HypKey(None, "use the CAWB schedule (true) instead of ultralytics' cos/linear one (false)"),
    "cawb_steps": HypKey("restart_epochs", "epochs at which a new cycle starts (warm boot), e.g. [30, 80]"),
    "cawb_step_scale": HypKey("step_scale", "each restart multiplies the peak lr by this (> 0)"),
    "cawb_epoch_scale": HypKey("epoch_scale", "> 0; a non-final cycle anneals over a longer period than its length"),
    "cawb_epoch_scale_mode": HypKey(
        "epoch_scale_mode", f"{' or '.join(EPOCH_SCALE_MODES)}: period L*epoch_scale or L+epoch_scale"
    ),
    "cawb_lf": HypKey("lf", f"decay in a cycle: {', '.join(BUILTIN_DECAYS)}, or an import path package.module:function"),
    "cawb_lf_min": HypKey("lf_min", "where the built-in decays end, as a fraction of the cycle's peak, in [0, 1]"),
}
_FIELD_TO_KEY = {key.field: name for name, key in CAWB_HYP_KEYS.items() if key.field}

#: Keys cawb adds to ultralytics' training args besides the ``cawb_*`` ones, with their defaults there and their help.
#: The v5.0 loss keys default to None, "not set": the model's kind fills them in (:func:`hyp_for_model`).
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

#: The v5.0 recipe beyond the hyp files: what a v5.0 model gets for each key a hyp file and the command line leave
#: unset. ``box``, ``cls`` and ``cls_pw`` then have v5.0's meaning (``cls_pw`` is the class BCE's positive weight,
#: not ultralytics' class-frequency power); ``iou`` is the NMS IoU of the validation during training.
V5_RECIPE_DEFAULTS: dict[str, Any] = {
    "box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0,
    "label_smoothing_eps": 0.0, "iou": 0.6,
}

#: Keys of YOLOv5 hyp files that no model here reads, dropped with a warning, with why.
YOLOV5_DROPPED_KEYS: dict[str, str] = {
    "iou_t": "unused by v5.0's loss too (its anchor matching uses anchor_t)",
    "anchors": "anchors come from the model yaml (and AutoAnchor)",
}

# The model kinds (cawb.yolov5.sources.KIND_*; spelled here so that the core needs no import of them).
_KIND_V5, _KIND_ULTRALYTICS = "v5.0", "ultralytics"
_V5_GAINS = ("box", "obj", "cls")
_V5_ONLY = ("obj", "obj_pw", "anchor_t", "fl_gamma", "label_smoothing_eps")  # set in a file: the file is v5.0's
_ULTRALYTICS_ONLY = ("dfl",)
# ultralytics' box gain is 7.5 (its tuner searches 1-20), v5.0's 0.05 (its evolution searched 0.02-0.2).
_BOX_SCALE_SPLIT = 1.0


def cawb_hyp_defaults() -> dict[str, Any]:
    """The ``cawb_*`` keys with their default values (those of :class:`CawbSchedule`; ``cawb`` is False)."""
    fields = {f.name: f.default for f in dataclasses.fields(CawbSchedule) if f.init}
    defaults: dict[str, Any] = {"cawb": False}
    for name, key in CAWB_HYP_KEYS.items():
        if key.field:
            default = fields[key.field]
            defaults[name] = list(default) if isinstance(default, tuple) else default
    return defaults


@functools.lru_cache(maxsize=1)
def _ultralytics_default_yaml() -> dict[str, Any]:
    spec = importlib.util.find_spec("ultralytics")  # locates the package without importing it (2 s, torch)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ultralytics is not installed: pip install ultralytics")
    path = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def ultralytics_defaults() -> dict[str, Any]:
    """ultralytics' own default settings (``ultralytics/cfg/default.yaml``, what its ``DEFAULT_CFG_DICT`` holds),
    read from the installed package's file without importing ultralytics."""
    return dict(_ultralytics_default_yaml())


def _closest_key(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def validate_hyp(hyp: Mapping[str, Any], source: str = "hyp") -> dict[str, Any]:
    """Check a hyp mapping's keys, its CAWB values and its recipe values; return a copy without the YOLOv5 keys
    no model reads (:data:`YOLOV5_DROPPED_KEYS`, named in one warning). What the loss keys mean depends on the model:
    :func:`hyp_for_model` checks them once the model is known.

    Args:
        hyp: the mapping read from a hyp file (or built in code).
        source: where it came from, for messages (a file name).

    Raises:
        HypError: an unknown key (naming the closest valid one) or an invalid ``cawb_*`` or recipe value.
    """
    if not isinstance(hyp, Mapping):
        raise HypError(f"{source}: a hyp file must be a mapping of key: value, not {type(hyp).__name__}")
    valid = list(ultralytics_defaults()) + list(CAWB_HYP_KEYS) + list(RECIPE_KEYS)
    dropped = [key for key in hyp if key in YOLOV5_DROPPED_KEYS]
    for key in hyp:
        if not isinstance(key, str):
            raise HypError(f"{source}: key {key!r} is not a string")
        if key not in valid and key not in dropped:
            raise HypError(f"{source}: unknown key '{key}'{_closest_key(key, valid)}")
    if dropped:
        LOGGER.warning(
            "%s: YOLOv5 keys that no model here reads are ignored: %s",
            source,
            "; ".join(f"{key} ({YOLOV5_DROPPED_KEYS[key]})" for key in dropped),
        )
    clean = {key: value for key, value in hyp.items() if key not in dropped}
    _check_recipe_values(clean, source, _RECIPE_CHECKS)
    _check_cawb_values(clean, source)
    return clean


def _check_cawb_values(hyp: Mapping[str, Any], source: str) -> None:
    """Type checks of the ``cawb_*`` values that do not depend on the run's epoch count."""
    if "cawb" in hyp and not isinstance(hyp["cawb"], bool):
        raise HypError(f"{source}: cawb={hyp['cawb']!r} is invalid: it must be true or false")
    if "cawb_lf" in hyp:
        resolve_lf(hyp["cawb_lf"], source)
    probe = {key: value for key, value in hyp.items() if key in CAWB_HYP_KEYS and key != "cawb"}
    if probe:
        # Validate against a long run so that only the values themselves, not the epoch count, can fail here.
        steps = probe.get("cawb_steps")
        numbers = [s for s in steps if _is_number(s)] if isinstance(steps, (list, tuple)) else []
        epochs_for_check = 1 + int(max([1, *numbers]))
        schedule_from_hyp({**probe, "cawb": True, "warmup_epochs": 0}, epochs=epochs_for_check, source=source)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_check(test: Callable[[float], bool], allowed: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: _is_number(value) and math.isfinite(value) and test(value)), allowed


# Value checks of the recipe keys (None is "not set"); the v5.0-only ones for v5.0 models in _V5_CHECKS.
_RECIPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "obj": _number_check(lambda v: v >= 0, "a number >= 0"),
    "obj_pw": _number_check(lambda v: v > 0, "a number > 0"),
    "anchor_t": _number_check(lambda v: v > 1, "a number > 1 (a ratio threshold: max(r, 1/r) is never below 1)"),
    "fl_gamma": _number_check(lambda v: v >= 0, "a number >= 0 (0 = no focal loss)"),
    "label_smoothing_eps": _number_check(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "autoanchor": ((lambda v: isinstance(v, bool)), "true or false"),
    "warmup_min_iters": ((lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0), "an integer >= 0"),
}
_V5_CHECKS = {
    **_RECIPE_CHECKS,
    "box": _number_check(lambda v: v >= 0, "a number >= 0"),
    "cls": _number_check(lambda v: v >= 0, "a number >= 0"),
    "cls_pw": _number_check(lambda v: v > 0, "a number > 0 (v5.0: the class BCE's positive weight)"),
}


def _check_recipe_values(hyp: Mapping[str, Any], source: str, checks: Mapping[str, tuple]) -> None:
    for key, (valid, allowed) in checks.items():
        if hyp.get(key) is not None and not valid(hyp[key]):
            raise HypError(f"{source}: {key}={hyp[key]!r} is invalid: it must be {allowed}")


def recipe_key_defaults() -> dict[str, Any]:
    """The keys cawb adds beside ultralytics' (:data:`RECIPE_KEYS`) with their defaults in the trainer's args."""
    return {key: default for key, (default, _) in RECIPE_KEYS.items()}


def kind_defaults(kind: str) -> dict[str, Any]:
    """What a model of this kind gets for the keys a hyp file and the command line leave unset:
    :data:`V5_RECIPE_DEFAULTS` for ``"v5.0"`` models, nothing for ``"ultralytics"`` ones (ultralytics' defaults)."""
    if kind not in (_KIND_V5, _KIND_ULTRALYTICS):
        raise ValueError(f"unknown model kind {kind!r}: {_KIND_V5} or {_KIND_ULTRALYTICS}")
    return dict(V5_RECIPE_DEFAULTS) if kind == _KIND_V5 else {}


def _settings(hyp: Mapping[str, Any], keys) -> str:
    return ", ".join(f"{key}={hyp[key]!r}" for key in keys)


_ULTRALYTICS_WHOSE, _V5_WHOSE = "ultralytics'", "YOLOv5 v5.0's"


def _are_gains(keys, whose: str) -> str:
    return f"are {whose} loss gains" if len(keys) > 1 else f"is {whose} loss gain"


def hyp_for_model(hyp: Mapping[str, Any], kind: str, source: str = "hyp") -> dict[str, Any]:
    """Check that a hyp mapping's loss settings are meant for this kind of model; return what that model uses.

    The loss keys mean different things in the two kinds of model (``box``: v5.0's gain 0.05 against ultralytics'
    7.5; ``cls_pw``: v5.0's BCE positive weight against ultralytics' class-frequency power). So:

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
    if kind == _KIND_V5:
        if _is_number(box) and box > _BOX_SCALE_SPLIT:
            shown = [key for key in ("box", "cls", *_ULTRALYTICS_ONLY) if key in hyp]
            raise HypError(f"{source}: {_settings(hyp, shown)} {_are_gains(shown, _ULTRALYTICS_WHOSE)} (its "
                           "defaults: box 7.5, cls 0.5, dfl 1.5), meant for an anchor-free model; a v5.0 model has "
                           "v5.0's loss: remove them to get v5.0's gains (box 0.05, obj 1.0, cls 0.5) or set v5.0 "
                           "values")
        _check_recipe_values(hyp, source, _V5_CHECKS)
        return dict(hyp)
    gains = [key for key in _V5_GAINS if hyp.get(key) is not None]
    if "obj" in gains or (v5_only and gains) or (_is_number(box) and box < _BOX_SCALE_SPLIT):
        raise HypError(f"{source}: {_settings(hyp, gains)} {_are_gains(gains, _V5_WHOSE)}, meant for a v5.0 model "
                       "(e.g. --cfg yolov5s-v5.0.yaml); this model is ultralytics' anchor-free one: remove them to get "
                       "its own gains (box 7.5, cls 0.5, dfl 1.5)")
    dropped = v5_only + (["cls_pw"] if v5_only and hyp.get("cls_pw") is not None else [])
    if dropped:
        LOGGER.warning("%s: v5.0 loss settings ignored by ultralytics' anchor-free model: %s", source,
                       _settings(hyp, dropped))
    return {key: value for key, value in hyp.items() if key not in dropped}


def load_hyp(path: str | Path) -> dict[str, Any]:
    """Read and validate a hyp YAML file (see :func:`validate_hyp`).

    An empty file (or one of comments only) is refused: it would silently train with none of the settings a hyp
    file is for. So is a key given twice (PyYAML would keep the last one).

    Raises:
        HypError: the file is missing, a directory, unreadable, binary, empty, not YAML, not a mapping, gives a key
            twice, or has a bad key or value (one line naming the file, with the line where it helps).
    """
    try:
        data = read_yaml(path, "hyp file", mapping_of="key: value settings (ultralytics keys and cawb_* keys)")
    except UserFileError as error:
        raise HypError(str(error)) from None
    return validate_hyp(data, source=str(path))


def resolve_lf(spec: Any, source: str = "hyp") -> str | Callable[[float, float], float]:
    """Turn a ``cawb_lf`` value into what :class:`CawbSchedule` takes: a built-in name or a callable.

    ``spec`` is ``"cos"``, ``"linear"``, ``"package.module:function"`` (imported, never eval'd) or a callable.

    Raises:
        HypError: unknown name, module that cannot be imported, missing or non-callable attribute.
    """
    if callable(spec):
        return spec
    allowed = f"{', '.join(BUILTIN_DECAYS)} or an import path package.module:function"
    if not isinstance(spec, str):
        raise HypError(f"{source}: cawb_lf={spec!r} is invalid: it must be {allowed}")
    if spec in BUILTIN_DECAYS:
        return spec
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise HypError(f"{source}: cawb_lf={spec!r} is invalid: it must be {allowed}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise HypError(f"{source}: cawb_lf={spec!r}: cannot import module '{module_name}' ({error})") from error
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise HypError(f"{source}: cawb_lf={spec!r}: module '{module_name}' has no attribute '{attribute}'")
        target = getattr(target, part)
    if not callable(target):
        raise HypError(f"{source}: cawb_lf={spec!r} is not callable")
    return target


def schedule_from_hyp(hyp: Mapping[str, Any], epochs: int | None = None, source: str = "hyp") -> CawbSchedule | None:
    """The CAWB schedule a hyp mapping describes, or None when ``cawb`` is false.

    Missing ``cawb_*`` keys take their defaults. ``epochs`` overrides the mapping's ``epochs``. The warmup length
    is ultralytics' ``warmup_epochs``, limited like ultralytics limits it to leave at least the last epoch. A custom
    ``cawb_lf`` is evaluated at every whole epoch of the run (:meth:`CawbSchedule.check_epochs`), so that one that
    fails somewhere fails here.

    Raises:
        HypError: an invalid value, named by its hyp key.
    """
    settings = {**cawb_hyp_defaults(), **{k: v for k, v in hyp.items() if k in CAWB_HYP_KEYS}}
    if not settings["cawb"]:
        return None
    total = hyp.get("epochs", ultralytics_defaults()["epochs"]) if epochs is None else epochs
    warmup = hyp.get("warmup_epochs", ultralytics_defaults()["warmup_epochs"])
    if _is_number(total) and _is_number(warmup) and total >= 1:
        warmup = min(warmup, max(total - 1, 0))  # as ultralytics' trainer: warmup never takes the last epoch
    steps = settings["cawb_steps"]
    try:
        schedule = CawbSchedule(
            epochs=total,
            warmup_epochs=warmup,
            restart_epochs=[] if steps is None else steps,
            step_scale=settings["cawb_step_scale"],
            epoch_scale=settings["cawb_epoch_scale"],
            epoch_scale_mode=settings["cawb_epoch_scale_mode"],
            lf=resolve_lf(settings["cawb_lf"], source),
            lf_min=settings["cawb_lf_min"],
        )
    except CawbConfigError as error:
        key = _FIELD_TO_KEY.get(error.parameter or "", error.parameter)
        if error.parameter and error.requirement:
            raise HypError(f"{source}: {key}={error.value!r} is invalid: it must be {error.requirement}") from error
        raise HypError(f"{source}: {error}") from error
    if schedule.custom_lf:
        try:
            schedule.check_epochs()  # a function that fails at some epoch fails now, not mid-training
        except CawbConfigError as error:
            raise HypError(f"{source}: cawb_lf={settings['cawb_lf']!r}: {error}") from error
    return schedule
