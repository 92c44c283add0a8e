"""Hyperparameter (hyp) YAML files: ultralytics' own keys plus the ``cawb_*`` keys, checked at the edge.

A hyp file is a flat mapping. Every key of ultralytics' ``default.yaml`` is accepted, and its value checked as
ultralytics' trainer would check it (:mod:`cawb.training.ultralytics_settings`); the CAWB keys
(:data:`CAWB_HYP_KEYS`) and the YOLOv5 recipe keys (:data:`cawb.yolov5.recipe.RECIPE_KEYS`) are added beside them.
Anything else fails before training starts, naming the key and the closest valid one.

This module is the one list of the CAWB keys and of their defaults (those of :class:`~cawb.schedule.CawbSchedule`),
and the one place a hyp mapping becomes a schedule (:func:`schedule_from_hyp`). The YAML key ``cawb_steps`` is the
schedule's ``restart_epochs``: :data:`CAWB_HYP_KEYS` says which field each key sets, and errors are restated under
the key the user wrote.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from cawb.schedule import BUILTIN_DECAYS, EPOCH_SCALE_MODES, CawbConfigError, CawbSchedule
from cawb.training.ultralytics_settings import check_ultralytics_settings, ultralytics_defaults
from cawb.utils.checks import is_number
from cawb.utils.errors import HypError
from cawb.utils.user_files import UserFileError, read_yaml
from cawb.yolov5.recipe import RECIPE_KEYS, check_recipe_values
from cawb.yolov5.train_flags import hint_for_key

__all__ = [
    "CAWB_HYP_KEYS",
    "HypError",
    "HypFile",
    "PART_KEYS",
    "YOLOV5_DROPPED_KEYS",
    "cawb_hyp_defaults",
    "closest_key",
    "load_hyp",
    "read_hyp_file",
    "resolve_lf",
    "schedule_from_hyp",
    "valid_keys",
    "validate_hyp",
]

LOGGER = logging.getLogger("cawb")


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
_KEY_OF_FIELD = {key.field: name for name, key in CAWB_HYP_KEYS.items() if key.field}

#: Switches of cawb's trainer parts besides CAWB's and the recipe's: key -> (default, help). Each must be true or false.
PART_KEYS: dict[str, tuple[bool, str]] = {
    "exact_resume": (True, "write weights/last.pt.resume-state after each epoch, so that a resumed run repeats the "
                           "stopped one (false: ultralytics' own resume)"),
}

#: Keys of YOLOv5 hyp files that no model here reads, dropped with a warning, with why.
YOLOV5_DROPPED_KEYS: dict[str, str] = {
    "iou_t": "unused by v5.0's loss too (its anchor matching uses anchor_t)",
    "anchors": "anchors come from the model yaml (and AutoAnchor)",
}


def cawb_hyp_defaults() -> dict[str, Any]:
    """The ``cawb_*`` keys with their default values (those of :class:`CawbSchedule`; ``cawb`` is False)."""
    fields = {f.name: f.default for f in dataclasses.fields(CawbSchedule) if f.init}
    defaults: dict[str, Any] = {"cawb": False}
    for name, key in CAWB_HYP_KEYS.items():
        if key.field:
            default = fields[key.field]
            defaults[name] = list(default) if isinstance(default, tuple) else default
    return defaults


def valid_keys() -> list[str]:
    """Every key a hyp file may set: ultralytics' own, the CAWB keys, the recipe keys and the trainer parts' switches."""
    return [*ultralytics_defaults(), *CAWB_HYP_KEYS, *RECIPE_KEYS, *PART_KEYS]


def closest_key(key: str, valid: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid key, or "" when none is close. A key named after a YOLOv5
    ``train.py`` flag gets what it is here instead (:func:`cawb.yolov5.train_flags.hint_for_key`): spelling
    neighbours of YOLOv5's names are other settings (``image_weights`` is not ``line_width``)."""
    hint = hint_for_key(key)
    if hint:
        return f" ({hint})"
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def validate_hyp(hyp: Mapping[str, Any], source: str = "hyp") -> dict[str, Any]:
    """Check a hyp mapping: its keys, its CAWB, recipe and ultralytics values; return a copy without the YOLOv5 keys
    no model reads (:data:`YOLOV5_DROPPED_KEYS`, named in one warning). What the loss keys mean depends on the model:
    :func:`cawb.yolov5.recipe.hyp_for_model` checks them once the model is known.

    Args:
        hyp: the mapping read from a hyp file (or given as ``key=value``, or built in code).
        source: where it came from, for messages (a file name, ``command line``).

    Raises:
        HypError: an unknown key (naming the closest valid one) or an invalid value, in one line.
    """
    if not isinstance(hyp, Mapping):
        raise HypError(f"{source}: a hyp file must be a mapping of key: value, not {type(hyp).__name__}")
    valid = valid_keys()
    dropped = [key for key in hyp if key in YOLOV5_DROPPED_KEYS]
    for key in hyp:
        if not isinstance(key, str):
            raise HypError(f"{source}: key {key!r} is not a string")
        if key not in valid and key not in dropped:
            raise HypError(f"{source}: unknown key '{key}'{closest_key(key, valid)}")
    if dropped:
        LOGGER.warning(
            "%s: YOLOv5 keys that no model here reads are ignored: %s",
            source,
            "; ".join(f"{key} ({YOLOV5_DROPPED_KEYS[key]})" for key in dropped),
        )
    clean = {key: value for key, value in hyp.items() if key not in dropped}
    check_recipe_values(clean, source)
    for key in PART_KEYS:
        if key in clean and not isinstance(clean[key], bool):
            raise HypError(f"{source}: {key}={clean[key]!r} is invalid: it must be true or false")
    _check_cawb_values(clean, source)
    check_ultralytics_settings(clean, source=source)
    return clean


def _check_cawb_values(hyp: Mapping[str, Any], source: str) -> None:
    """Type checks of the ``cawb_*`` values that do not depend on the run's epoch count."""
    if "cawb" in hyp and not isinstance(hyp["cawb"], bool):
        raise HypError(f"{source}: cawb={hyp['cawb']!r} is invalid: it must be true or false")
    probe = {key: value for key, value in hyp.items() if key in CAWB_HYP_KEYS and key != "cawb"}
    if hyp.get("cawb") is False and probe:  # they would be ignored without a word
        raise HypError(f"{source}: cawb=false contradicts {', '.join(sorted(probe))}, which only the CAWB schedule "
                       "reads: set cawb: true, or leave them out")
    restarts = probe.get("cawb_steps")
    if isinstance(restarts, (list, tuple)):
        repeated = sorted({s for s in restarts if is_number(s) and restarts.count(s) > 1})
        if repeated:
            raise HypError(f"{source}: cawb_steps={list(restarts)!r} gives restart epoch(s) "
                           f"{', '.join(f'{s:g}' for s in repeated)} more than once: give each restart once")
    if probe:
        # Checked against a run long enough for every restart, so that only the values, not the epochs, can fail.
        numbers = [s for s in restarts if is_number(s)] if isinstance(restarts, (list, tuple)) else []
        schedule_from_hyp({**probe, "cawb": True, "warmup_epochs": 0}, epochs=1 + int(max([1, *numbers])),
                          source=source)


@dataclasses.dataclass(frozen=True)
class HypFile:
    """A hyp file read and checked: where it is, its settings (:func:`validate_hyp`) and the sha256 of its bytes
    (what a run made from it records as its identity)."""

    path: Path
    settings: Mapping[str, Any]
    sha256: str


def read_hyp_file(path: str | Path) -> HypFile:
    """Read a hyp YAML file and check every value in it (see :func:`validate_hyp`).

    An empty file (or one of comments only) is refused: it would silently train with none of the settings a hyp
    file is for. So is a key given twice (PyYAML would keep the last one).

    Raises:
        HypError: the file is missing, a directory, unreadable, binary, empty, not YAML, not a mapping, gives a key
            twice, or has a bad key or value (one line naming the file, with the line where it helps).
    """
    try:
        data = read_yaml(path, "hyp file", mapping_of="key: value settings (ultralytics keys and cawb_* keys)")
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except UserFileError as error:
        raise HypError(str(error)) from None
    return HypFile(Path(path), validate_hyp(data, source=str(path)), digest)


def load_hyp(path: str | Path) -> dict[str, Any]:
    """The checked settings of a hyp YAML file (see :func:`read_hyp_file`), as a new dict."""
    return dict(read_hyp_file(path).settings)


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
    if is_number(total) and is_number(warmup) and total >= 1:
        warmup = min(warmup, max(total - 1, 0))  # as ultralytics' trainer: warmup never takes the last epoch
    fields = {key.field: settings[name] for name, key in CAWB_HYP_KEYS.items() if key.field}
    restarts = fields["restart_epochs"]
    fields.update(restart_epochs=[] if restarts is None else restarts, lf=resolve_lf(settings["cawb_lf"], source))
    try:
        schedule = CawbSchedule(epochs=total, warmup_epochs=warmup, **fields)
    except CawbConfigError as error:
        raise HypError(f"{source}: {error.restated(_KEY_OF_FIELD)}") from error
    if schedule.custom_lf:
        try:
            schedule.check_epochs()  # a function that fails at some epoch fails now, not mid-training
        except CawbConfigError as error:
            raise HypError(f"{source}: cawb_lf={settings['cawb_lf']!r}: {error}") from error
    return schedule
