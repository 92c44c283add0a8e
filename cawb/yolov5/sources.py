"""Where a model yaml comes from: the bundled YOLOv5 yamls by name, any yaml by path; whether it is a classic one.

A model yaml is a classic YOLOv5 one (kind ``"v5.0"``) when it has a top-level ``anchors`` list and its last layer is
``Detect``, as in the yamls of releases v5.0 to v7.0, which cawb.yolov5 builds; ultralytics' yamls have neither
anchors nor that head. No torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from cawb.utils.errors import InputError, error_line

__all__ = [
    "BUNDLED_MODELS",
    "KIND_ULTRALYTICS",
    "KIND_V5",
    "ModelYamlError",
    "RELEASES",
    "bundled_model_yaml",
    "is_v5_yaml",
    "load_model_yaml",
    "resolve_model_yaml",
]

#: The two kinds of model cawb trains; the kind decides what the loss keys mean (see cawb.yolov5.recipe). "v5.0" is
#: classic, anchor-based YOLOv5, named after the release whose loss and recipe it trains with: the models of releases
#: v6.0 to v7.0 are of this kind too (they changed layers, not the head, the loss or the hyp keys).
KIND_V5 = "v5.0"
KIND_ULTRALYTICS = "ultralytics"

_MODELS_DIR = Path(__file__).resolve().parent / "models"
#: The releases whose layouts are bundled: v5.0 (Focus stem, SPP) and v7.0 (6x6 Conv stem, SPPF; v6.0's layout).
RELEASES = ("v5.0", "v7.0")
#: The bundled yamls, by the name --cfg takes.
BUNDLED_MODELS = tuple(f"yolov5{size}-{release}.yaml" for release in RELEASES for size in "nsmlx")


class ModelYamlError(InputError):
    """A model yaml that cannot be read or built; one line naming the file and what is wrong."""


def bundled_model_yaml(name: str) -> Path:
    """The path of a bundled YOLOv5 yaml (``"yolov5s-v5.0.yaml"``, ``"yolov5s-v7.0.yaml"``)."""
    if name not in BUNDLED_MODELS:
        raise ModelYamlError(f"{name!r} is not a bundled model: choose one of {', '.join(BUNDLED_MODELS)}")
    return _MODELS_DIR / name


def resolve_model_yaml(cfg: str | Path) -> Path | None:
    """The file a ``--cfg`` value names when cawb can find it: an existing path, else a bundled YOLOv5 yaml by its
    name (``yolov5s-v5.0.yaml``); None otherwise (ultralytics resolves its own names, ``yolov5s.yaml``)."""
    path = Path(cfg)
    if path.is_file():
        return path
    if path.name == str(cfg) and str(cfg) in BUNDLED_MODELS:
        return _MODELS_DIR / str(cfg)
    return None


def load_model_yaml(cfg: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A model yaml as a dict (a copy when given a dict), with ``yaml_file`` set to where it was read from.

    Raises:
        ModelYamlError: no such file, not YAML, not a mapping.
    """
    if isinstance(cfg, Mapping):
        return dict(cfg)
    path = resolve_model_yaml(cfg)
    if path is None:
        raise ModelYamlError(f"model yaml {cfg} not found (bundled: {', '.join(BUNDLED_MODELS)}, or give a path)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ModelYamlError(f"model yaml {path}: cannot be read ({error_line(error)})") from error
    if not isinstance(data, dict):
        raise ModelYamlError(f"model yaml {path}: must be a mapping with backbone and head, not {type(data).__name__}")
    data["yaml_file"] = str(path)
    return data


def is_v5_yaml(data: Mapping[str, Any]) -> bool:
    """Whether a model yaml dict is a classic, anchor-based YOLOv5 one (top-level anchors, last layer Detect)."""
    try:
        return "anchors" in data and data["head"][-1][2] == "Detect"
    except (KeyError, IndexError, TypeError):
        return False
