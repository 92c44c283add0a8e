"""ultralytics' settings as cawb reads them: its defaults, its type lists, its optimizer names, the image
formats its loaders read."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import yaml

from cawb.utils.ultralytics_compat.support import UnsupportedUltralytics, _fix


@functools.lru_cache(maxsize=1)
def _default_yaml() -> dict[str, Any]:
    # ultralytics' DEFAULT_CFG_DICT is this file's content; found without importing the package (2 s: torch)
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise UnsupportedUltralytics(f"ultralytics is not installed: {_fix()}")
    path = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def default_settings() -> dict[str, Any]:
    """ultralytics' own default settings (its ``cfg/default.yaml``, what ``DEFAULT_CFG_DICT`` holds), read without
    importing ultralytics."""
    return dict(_default_yaml())


@functools.cache
def setting_rules() -> SimpleNamespace:
    """ultralytics' type lists of its settings: ``float_keys``, ``fraction_keys``, ``int_keys``, ``bool_keys``,
    ``str_keys`` (frozensets) and ``int_minimums`` (key -> smallest valid integer). A list a release does not
    have (``CFG_INT_MIN`` and ``CFG_STR_KEYS`` are recent) is empty."""
    import ultralytics.cfg as cfg

    return SimpleNamespace(
        float_keys=frozenset(getattr(cfg, "CFG_FLOAT_KEYS", ())),
        fraction_keys=frozenset(getattr(cfg, "CFG_FRACTION_KEYS", ())),
        int_keys=frozenset(getattr(cfg, "CFG_INT_KEYS", ())),
        bool_keys=frozenset(getattr(cfg, "CFG_BOOL_KEYS", ())),
        str_keys=frozenset(getattr(cfg, "CFG_STR_KEYS", ())),
        int_minimums=dict(getattr(cfg, "CFG_INT_MIN", {})),
    )


#: The optimizers ``BaseTrainer.build_optimizer`` builds by name, in every supported release (it keeps them in a
#: local set; it ignores case). MuSGD is added where ultralytics ships it (:func:`optimizer_names`).
_OPTIMIZERS = ("Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSProp", "SGD", "auto")


@functools.cache
def optimizer_names() -> tuple[str, ...]:
    """The ``optimizer:`` names ultralytics' trainer builds, sorted (case does not matter to it)."""
    try:
        from ultralytics.optim import MuSGD  # noqa: F401 - where ultralytics ships it, its trainer builds it
        names = (*_OPTIMIZERS, "MuSGD")
    except ImportError:
        names = _OPTIMIZERS
    return tuple(sorted(names, key=str.lower))


def image_formats() -> frozenset[str]:
    """The image suffixes (lower case, no dot) ultralytics' dataset loaders read."""
    from ultralytics.data.utils import IMG_FORMATS

    return frozenset(IMG_FORMATS)


#: Suffixes of the formats ultralytics reads through a Pillow plugin it installs on first need (pi-heif).
PLUGIN_IMAGE_FORMATS = frozenset({"heic", "heif"})


def pillow_image_open() -> Callable[..., Any]:
    """Pillow's ``Image.open`` as Pillow ships it. Once imported, ultralytics replaces it with one that, given a
    file Pillow cannot identify, installs (or, offline, fails to install) the pi-heif plugin and logs about it: a
    check of a damaged image must not set that off."""
    import PIL.Image

    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", PIL.Image.open)


