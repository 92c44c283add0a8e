"""Which kind a model source is: a classic YOLOv5 model (cawb.yolov5; kind "v5.0") or one of ultralytics' own.

The kind decides what the loss keys of a hyp file mean (see :func:`cawb.yolov5.recipe.hyp_for_model`). No torch import
unless the source is a checkpoint or a model object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from cawb.yolov5.sources import (
    KIND_ULTRALYTICS,
    KIND_V5,
    ModelYamlError,
    is_v5_yaml,
    load_model_yaml,
    resolve_model_yaml,
)

__all__ = ["model_kind"]


def model_kind(source: str | Path | Mapping[str, Any] | Any) -> str:
    """``"v5.0"`` or ``"ultralytics"`` for a model yaml (name, path or dict), a ``.pt`` checkpoint (v5.0 when its
    model is a :class:`cawb.yolov5.model.YOLOv5Model` or it was written by the YOLOv5 repository) or a model object.
    A source cawb cannot open is ultralytics' to resolve (and to report)."""
    if isinstance(source, Mapping):
        return KIND_V5 if is_v5_yaml(source) else KIND_ULTRALYTICS
    if isinstance(source, (str, Path)):
        if str(source).lower().endswith((".yaml", ".yml")):
            path = resolve_model_yaml(source)
            if path is None:
                return KIND_ULTRALYTICS
            try:
                return KIND_V5 if is_v5_yaml(load_model_yaml(path)) else KIND_ULTRALYTICS
            except ModelYamlError:
                return KIND_ULTRALYTICS
        if str(source).lower().endswith(".pt") and Path(source).is_file():
            from ultralytics.utils.patches import torch_load

            from cawb.yolov5.checkpoint_import import is_yolov5_checkpoint

            if is_yolov5_checkpoint(source):
                return KIND_V5

            try:
                checkpoint = torch_load(source, map_location="cpu")
            except Exception:  # unreadable: whoever loads it next reports it
                return KIND_ULTRALYTICS
            if isinstance(checkpoint, dict):
                source = checkpoint.get("ema") or checkpoint.get("model")
        else:
            return KIND_ULTRALYTICS
    from cawb.yolov5.model import YOLOv5Model

    model = getattr(source, "module", source)  # DDP-wrapped
    return KIND_V5 if isinstance(model, YOLOv5Model) else KIND_ULTRALYTICS
