"""Hyperparameter (hyp) YAML files: ultralytics' own keys plus the ``cawb_*`` keys, validated at the edge.

A hyp file is a flat mapping. Every key of ultralytics' ``default.yaml`` is accepted as is; the CAWB keys below
are added beside them; a YOLOv5 hyp file is accepted by dropping the keys that mean something else (or nothing)
under ultralytics, named in one warning. Anything else fails before training starts, naming the key and the
closest valid one.

This module is the one list of the CAWB hyp keys and their defaults (taken from :class:`CawbSchedule`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from cawb.schedule import BUILTIN_DECAYS, EPOCH_SCALE_MODES, CawbConfigError, CawbSchedule
from cawb.utils.user_files import UserFileError, read_yaml

__all__ = [
    "CAWB_HYP_KEYS",
    "HypError",
    "YOLOV5_DROPPED_KEYS",
    "cawb_hyp_defaults",
    "load_hyp",
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

#: Keys of a YOLOv5 hyp file dropped under ultralytics, with why. The loss gains and cls_pw exist in ultralytics
#: under the same names but scale a different (anchor-free, DFL) loss or mean something else, so copying them
#: would silently change training.
YOLOV5_DROPPED_KEYS: dict[str, str] = {
    "obj": "no objectness loss in ultralytics' anchor-free head",
    "obj_pw": "no objectness loss in ultralytics' anchor-free head",
    "iou_t": "anchor-based target assignment, replaced by the task-aligned assigner",
    "anchor_t": "anchor-based target assignment, replaced by the task-aligned assigner",
    "anchors": "the anchor-free head has no anchors",
    "fl_gamma": "ultralytics' detection loss has no focal-loss switch",
    "label_smoothing": "not an ultralytics setting",
    "box": "YOLOv5's box gain (0.05) scales a different loss than ultralytics' box gain (7.5)",
    "cls": "YOLOv5's cls gain scales a different loss than ultralytics' cls gain",
    "cls_pw": "YOLOv5's BCE positive weight; ultralytics' cls_pw is a class-frequency weighting power",
}
# Keys that exist only in YOLOv5 hyp files: one of them marks a file as YOLOv5's.
_YOLOV5_MARKERS = frozenset(YOLOV5_DROPPED_KEYS) - {"box", "cls", "cls_pw"}


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
    """Check a hyp mapping's keys and CAWB values; return a copy with YOLOv5-only keys dropped.

    Args:
        hyp: the mapping read from a hyp file (or built in code).
        source: where it came from, for messages (a file name).

    Raises:
        HypError: an unknown key (naming the closest valid one) or an invalid ``cawb_*`` value.
    """
    if not isinstance(hyp, Mapping):
        raise HypError(f"{source}: a hyp file must be a mapping of key: value, not {type(hyp).__name__}")
    valid = list(ultralytics_defaults()) + list(CAWB_HYP_KEYS)
    is_yolov5 = any(key in _YOLOV5_MARKERS for key in hyp)
    dropped = [key for key in hyp if key in YOLOV5_DROPPED_KEYS and (is_yolov5 or key in _YOLOV5_MARKERS)]
    for key in hyp:
        if not isinstance(key, str):
            raise HypError(f"{source}: key {key!r} is not a string")
        if key not in valid and key not in dropped:
            raise HypError(f"{source}: unknown key '{key}'{_closest_key(key, valid)}")
    if dropped:
        LOGGER.warning(
            "%s: YOLOv5 keys without an ultralytics counterpart are ignored: %s",
            source,
            "; ".join(f"{key} ({YOLOV5_DROPPED_KEYS[key]})" for key in dropped),
        )
    clean = {key: value for key, value in hyp.items() if key not in dropped}
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
    is ultralytics' ``warmup_epochs``, limited like ultralytics limits it to leave at least the last epoch.

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
        return CawbSchedule(
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
