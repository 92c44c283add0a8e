"""Classic YOLOv5 checkpoints (releases v5.0 to v7.0) read without YOLOv5's code and turned into cawb's model.

A checkpoint written by the YOLOv5 repository (its ``train.py``'s ``last.pt``/``best.pt``, a release's
``yolov5s.pt``) pickles YOLOv5's own classes (``models.yolo.Model``, ``models.common.Conv``, ...): ``torch.load``
would import them, and run whatever else the pickle names. Here it is read by a restricted unpickler:

* torch's tensor rebuilders and a few plain containers are the only callables it lets the pickle reach;
* every other class or function the pickle names becomes an inert stand-in (:class:`StandIn`) that keeps the name,
  the arguments it was called with and its pickled state; nothing of it is imported or run.

From the stand-ins only the model's yaml, its tensors (parameters and buffers by name), its class names and its
Detect head's stride and anchors are taken. The yaml is built into :class:`~cawb.yolov5.model.YOLOv5Model`, the
tensors are loaded into it in float32, and the anchors converted: YOLOv5 keeps ``model.<last>.anchors`` in grid units
(pixels / stride), cawb in pixels. Whatever does not match (a layer cawb does not build, another activation, other
strides) is refused with one line, never loaded partly.

YOLOv5 picks the EMA weights when a checkpoint has them, and so does :func:`import_yolov5_checkpoint`.
"""

from __future__ import annotations

import datetime
import functools
import io
import os
import pickle
import types
from copy import deepcopy
from pathlib import Path
from typing import Any, Mapping

import torch

from cawb.utils.atomic_files import discard_temporary, temporary_name
from cawb.utils.errors import InputError, error_line
from cawb.utils.user_files import check_checkpoint_file, check_output_file
from cawb.yolov5.sources import ModelYamlError, is_v5_yaml

__all__ = [
    "CheckpointImportError",
    "StandIn",
    "import_yolov5_checkpoint",
    "is_yolov5_checkpoint",
    "read_restricted",
    "write_imported_checkpoint",
]

#: The classes a classic YOLOv5 detection checkpoint's model is pickled as (v7.0 renamed Model to DetectionModel).
DETECTION_MODELS = ("models.yolo.Model", "models.yolo.DetectionModel")
_SILU = "torch.nn.modules.activation.SiLU"
# What the pickle may call: torch's rebuilders of tensors and parameters, and plain containers.
_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
}


class CheckpointImportError(InputError):
    """A classic YOLOv5 checkpoint that cannot be imported; one line naming the file and why."""


class StandIn:
    """An object of a class the checkpoint names but that is never imported: it keeps the arguments it was called
    with (``args``) and its pickled state (``state``); the class's dotted name is ``type(obj).path``."""

    path = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    @property
    def fields(self) -> dict[str, Any]:
        """The pickled attribute dict (an ``nn.Module``'s ``__dict__``), empty when there is none."""
        state = getattr(self, "state", None)
        if isinstance(state, tuple) and state and isinstance(state[0], dict):  # (dict, slots)
            state = state[0]
        return state if isinstance(state, dict) else {}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._stand_ins: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # protocol 2 (torch.save's) names it so
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        path = f"{module}.{name}"
        if path not in self._stand_ins:
            self._stand_ins[path] = type(name, (StandIn,), {"path": path, "__module__": __name__})
        return self._stand_ins[path]


def _restricted_pickle_module() -> types.ModuleType:
    """A module with the interface ``torch.load(pickle_module=...)`` uses."""
    module = types.ModuleType("cawb_restricted_pickle")
    module.Unpickler = _RestrictedUnpickler
    module.load = lambda file, **kwargs: _RestrictedUnpickler(file, **kwargs).load()
    return module


def read_restricted(path: str | Path) -> Any:
    """What ``torch.save`` wrote to ``path``, tensors as tensors and every other class as a :class:`StandIn`.

    Raises:
        CheckpointImportError: the file cannot be read as a torch checkpoint.
    """
    path = check_checkpoint_file(path, "checkpoint")
    try:
        return torch.load(path, map_location="cpu", pickle_module=_restricted_pickle_module(), weights_only=False)
    except Exception as error:  # whatever a damaged or foreign file makes unpickling raise
        raise CheckpointImportError(f"{path}: cannot be read ({error_line(error)})") from None


@functools.lru_cache(maxsize=8)
def _root_class(path: str, size: int, modified: int) -> str | None:
    try:
        checkpoint = read_restricted(path)
    except InputError:
        return None
    root = _root(checkpoint) if isinstance(checkpoint, dict) else None
    return type(root).path if isinstance(root, StandIn) else None


def is_yolov5_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint written by the YOLOv5 repository (its model a ``models.yolo`` class);
    False for anything else, an ultralytics checkpoint or an unreadable file included. Nothing is imported."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if not Path(path).is_file():
        return False
    root = _root_class(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    return root is not None and root.startswith("models.yolo.")


def _root(checkpoint: Mapping[str, Any]) -> Any:
    """The model a YOLOv5 checkpoint holds: its EMA when there is one (as YOLOv5 loads it), else ``model``."""
    return checkpoint.get("ema") or checkpoint.get("model")


def _module_tensors(module: StandIn, prefix: str, tensors: dict[str, torch.Tensor],
                    modules: dict[str, StandIn]) -> None:
    """Collect a pickled ``nn.Module``'s parameters and persistent buffers by ``state_dict`` name, and its
    submodules by name."""
    fields = module.fields
    modules[prefix.rstrip(".")] = module
    for name, tensor in (fields.get("_parameters") or {}).items():
        if tensor is not None:
            tensors[prefix + name] = tensor
    transient = fields.get("_non_persistent_buffers_set") or set()
    for name, tensor in (fields.get("_buffers") or {}).items():
        if tensor is not None and name not in transient:
            tensors[prefix + name] = tensor
    for name, child in (fields.get("_modules") or {}).items():
        if isinstance(child, StandIn):
            _module_tensors(child, f"{prefix}{name}.", tensors, modules)


def _class_names(names: Any, nc: int) -> dict[int, str]:
    if isinstance(names, dict):
        return {int(index): str(name) for index, name in names.items()}
    if isinstance(names, (list, tuple)) and len(names) == nc:
        return {index: str(name) for index, name in enumerate(names)}
    return {index: str(index) for index in range(nc)}


def import_yolov5_checkpoint(path: str | Path) -> Any:
    """The :class:`~cawb.yolov5.model.YOLOv5Model` (float32) whose outputs equal those of the network a classic
    YOLOv5 checkpoint holds, with the checkpoint's class names, anchors in pixels and stride.

    Raises:
        CheckpointImportError: one line naming ``path``: unreadable, not a YOLOv5 detection checkpoint, or a network
            cawb does not build as it was saved (an unknown layer, an activation other than SiLU, a tensor missing,
            extra or of another shape, other strides).
    """
    from cawb.yolov5.model import YOLOv5Model

    checkpoint = read_restricted(path)
    root = _root(checkpoint) if isinstance(checkpoint, dict) else None
    if isinstance(root, StandIn):
        held = f"its model is {type(root).path}"
    elif isinstance(checkpoint, dict):
        held = f"it holds no model: keys {', '.join(sorted(map(str, checkpoint))[:5]) or 'none'}"
    else:
        held = f"it holds a {type(checkpoint).__name__}"
    if not isinstance(root, StandIn) or type(root).path not in DETECTION_MODELS:
        raise CheckpointImportError(f"{path}: not a YOLOv5 detection checkpoint ({held}; expected a model of class "
                                    f"{' or '.join(DETECTION_MODELS)}, as YOLOv5 v5.0-v7.0 train.py saves them)")
    fields = root.fields
    yaml = fields.get("yaml")
    if not isinstance(yaml, dict) or not is_v5_yaml(yaml):
        raise CheckpointImportError(f"{path}: its model carries no anchor-based YOLOv5 yaml (anchors and a Detect "
                                    "head); cawb imports detection models of YOLOv5 v5.0 to v7.0")
    tensors: dict[str, torch.Tensor] = {}
    modules: dict[str, StandIn] = {}
    _module_tensors(root, "", tensors, modules)
    for name, module in modules.items():
        act = module.fields.get("_modules", {}).get("act")
        if isinstance(act, StandIn) and type(act).path != _SILU:
            raise CheckpointImportError(f"{path}: layer {name} uses {type(act).path}; cawb builds YOLOv5's SiLU "
                                        "activation only")
    try:
        model = YOLOv5Model({**yaml, "yaml_file": str(path)}, ch=int(yaml.get("ch", 3)), nc=int(yaml["nc"]),
                            verbose=False)
    except ModelYamlError as error:
        raise CheckpointImportError(f"cannot import: {error}") from None
    head_name = f"model.{len(model.model) - 1}"
    head = modules.get(head_name)
    stride = head.fields.get("stride") if head is not None else None
    if not isinstance(stride, torch.Tensor) or stride.float().tolist() != model.stride.tolist():
        raise CheckpointImportError(f"{path}: its Detect head's strides {stride!r} differ from those its yaml builds "
                                    f"({model.stride.tolist()})")
    # v5.0 also stores the anchors in pixels (anchor_grid) and computes with those; later releases scale at run time
    grid_anchors = tensors.pop(f"{head_name}.anchors")
    pixel_anchors = tensors.pop(f"{head_name}.anchor_grid", None)
    if pixel_anchors is None:
        pixel_anchors = grid_anchors.float() * stride.float().view(-1, 1, 1)
    own = model.state_dict()
    for key in (f"{head_name}.anchors", f"{head_name}.stride"):
        own.pop(key)
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which the yaml does not build"
        raise CheckpointImportError(f"{path}: its network {what} ({len(missing)} missing, {len(extra)} extra)")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise CheckpointImportError(f"{path}: {key} has shape {tuple(tensor.shape)}, the yaml builds "
                                        f"{tuple(own[key].shape)}")
    state = {key: tensor.float() for key, tensor in tensors.items()}
    state[f"{head_name}.anchors"] = pixel_anchors.float().view_as(model.model[-1].anchors)
    state[f"{head_name}.stride"] = model.stride.clone()
    model.load_state_dict(state, strict=True)
    for name, module in model.named_modules():  # BatchNorm settings as saved (YOLOv5's are eps 1e-3, momentum 0.03)
        saved = modules.get(name)
        if isinstance(module, torch.nn.BatchNorm2d) and saved is not None:
            module.eps, module.momentum = float(saved.fields["eps"]), saved.fields["momentum"]
    model.names = _class_names(fields.get("names"), model.model[-1].nc)
    return model.float()


def write_imported_checkpoint(source: str | Path, destination: str | Path) -> Any:
    """Import the classic YOLOv5 checkpoint ``source`` and write it as an ultralytics checkpoint ``destination``
    (``cawb.YOLO(destination)``, ``--weights``, ultralytics' predict/val/export take it), once: written complete
    under a temporary name, then linked into place, so ``destination`` is never overwritten and never half-written.
    Returns the imported model (float32).

    Raises:
        CheckpointImportError, InputError: ``source`` cannot be imported; ``destination`` exists or cannot be
            written (nothing is written then).
    """
    import ultralytics

    destination = Path(destination)
    if destination.exists() or destination.is_symlink():
        raise InputError(f"{destination}: already exists; the import never overwrites a file: give a new name")
    check_output_file(destination, "output")
    model = import_yolov5_checkpoint(source)
    model.args = {"task": "detect", "model": str(source)}
    checkpoint = {
        "date": datetime.datetime.now().isoformat(),
        "version": ultralytics.__version__,
        "epoch": -1,
        "best_fitness": None,
        "model": deepcopy(model).half(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": {"task": "detect", "model": str(source)},
        "train_metrics": None,
        "train_results": None,
        "imported_from": str(Path(source).absolute()),
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    destination.parent.mkdir(parents=True, exist_ok=True)
    draft = temporary_name(destination)
    try:
        draft.write_bytes(buffer.getvalue())
        os.link(draft, destination)  # unlike a rename, a link never replaces a file that appeared meanwhile
    except FileExistsError:
        raise InputError(f"{destination}: already exists; the import never overwrites a file: give a new name") \
            from None
    finally:
        discard_temporary(draft)
    return model
