"""YOLOv5 v5.0's network as an ultralytics ``DetectionModel``: built from a v5.0 yaml with ultralytics' own blocks.

The backbone and neck are ultralytics' ``Focus``, ``Conv``, ``C3``, ``SPP``, ``Concat`` and ``nn.Upsample``, which
compute what v5.0's modules of the same names computed (Conv: conv without bias, BatchNorm, SiLU; the BatchNorm eps
1e-3 and momentum 0.03 come from ultralytics' ``initialize_weights``, as from v5.0's). The head is
:class:`AnchorDetect`, v5.0's Detect: per level a 1x1 conv to ``anchors * (5 + nc)`` channels.

Outputs of :class:`YOLOv5Model`:

* training: a list, one raw tensor ``[B, na, ny, nx, 5 + nc]`` per level (what :class:`cawb.yolov5.loss.YOLOv5Loss`
  takes);
* inference: ``(y, raw)`` with ``y`` shaped ``[B, 4 + nc, N]`` like ultralytics' Detect output: boxes ``x, y, w, h``
  in input pixels, then per-class scores ``objectness * class probability``; ``y`` alone while traced or exported.
  ultralytics' validator, NMS, predictor and exporter take it as they take their own head's.

The model is pickled into checkpoints by its class path (``cawb.yolov5.model.YOLOv5Model``), so ``YOLO("best.pt")``
loads it wherever cawb is installed, without importing cawb first.
"""

from __future__ import annotations

import math
from copy import deepcopy
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from ultralytics.nn.modules import C3, SPP, Concat, Conv, Focus
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import initialize_weights

from cawb.yolov5.sources import ModelYamlError, is_v5_yaml, load_model_yaml

__all__ = ["AnchorDetect", "YOLOv5Model", "build_model", "parse_v5_model"]

# Modules a v5.0 yaml may name, with how their arguments read (channels are the first argument of each).
_CHANNEL_MODULES = {"Focus": Focus, "Conv": Conv, "C3": C3, "SPP": SPP}
_MODULES = (*_CHANNEL_MODULES, "Concat", "nn.Upsample", "Detect")


def _make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


class AnchorDetect(nn.Module):
    """v5.0's Detect head: per level a 1x1 conv to ``na * (5 + nc)`` channels, decoded with the level's anchors.

    Args:
        nc: number of classes.
        anchors: per level a flat list ``[w0, h0, w1, h1, ...]`` in input pixels, in stride order.
        ch: input channels per level.

    Buffers: ``anchors`` ``[nl, na, 2]`` in pixels and ``stride`` ``[nl]`` (set by :class:`YOLOv5Model`).
    """

    export = False  # ultralytics' exporter sets these on its own heads; kept for the same meaning here
    max_det = 300

    def __init__(self, nc: int, anchors: list[list[float]], ch: list[int]):
        super().__init__()
        self.nc = nc
        self.no = nc + 5  # x, y, w, h, objectness, classes
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2))
        self.register_buffer("stride", torch.zeros(self.nl))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)

    def forward(self, x: list[torch.Tensor]):
        """Training: the raw levels; inference: ``(decoded, raw)``, or ``decoded`` alone when exported or traced."""
        raw = []
        for i, feature in enumerate(x):
            bs, _, ny, nx = feature.shape
            raw.append(self.m[i](feature).view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return raw
        y = self.decode(raw)
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        return y if (self.export or tracing) else (y, raw)

    def decode(self, raw: list[torch.Tensor]) -> torch.Tensor:
        """``[B, 4 + nc, N]``: xywh in input pixels, then objectness * class probability, anchor-major per level."""
        out = []
        for i, p in enumerate(raw):
            bs, na, ny, nx, no = p.shape
            p = p.sigmoid()
            yv, xv = torch.meshgrid(torch.arange(ny, device=p.device, dtype=p.dtype),
                                    torch.arange(nx, device=p.device, dtype=p.dtype), indexing="ij")
            grid = torch.stack((xv, yv), -1).view(1, 1, ny, nx, 2)
            xy = (p[..., :2] * 2 - 0.5 + grid) * self.stride[i]
            wh = (p[..., 2:4] * 2) ** 2 * self.anchors[i].view(1, na, 1, 1, 2)
            scores = p[..., 5:] * p[..., 4:5]
            out.append(torch.cat((xy, wh, scores), -1).view(bs, -1, 4 + self.nc))
        return torch.cat(out, 1).permute(0, 2, 1)

    def initialize_biases(self) -> None:
        """v5.0's prior: objectness bias += log(8 / (640 / stride)^2), class biases += log(0.6 / (nc - 0.99))."""
        for conv, stride in zip(self.m, self.stride.tolist()):
            bias = conv.bias.detach().view(self.na, -1)
            bias[:, 4] += math.log(8 / (640 / stride) ** 2)
            bias[:, 5:] += math.log(0.6 / (self.nc - 0.99))

    def check_anchor_order(self) -> bool:
        """Put the anchors in stride order (largest anchors on the largest stride); True if they were flipped."""
        area = self.anchors.prod(-1).mean(-1)
        if (area[-1] - area[0]).sign() != (self.stride[-1] - self.stride[0]).sign():
            self.anchors.copy_(self.anchors.flip(0))
            return True
        return False


def parse_v5_model(d: Mapping[str, Any], ch: int) -> tuple[nn.Sequential, list[int]]:
    """Build the layers of a v5.0 yaml dict: ``(nn.Sequential of layers, indices whose outputs are kept)``.

    Raises:
        ModelYamlError: a malformed layer or a module this builder does not know.
    """
    source = d.get("yaml_file", "model yaml")
    gd, gw, nc = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0), d["nc"]
    channels = [ch]
    layers, save = [], []
    for i, row in enumerate(list(d["backbone"]) + list(d["head"])):
        try:
            f, n, name, args = row
        except (TypeError, ValueError):
            raise ModelYamlError(f"{source}: layer {i} {row!r} must be [from, repeats, module, args]") from None
        if name not in _MODULES:
            raise ModelYamlError(f"{source}: layer {i} module {name!r} is unknown: a v5.0 yaml may use "
                                 f"{', '.join(_MODULES)}")
        args = [d[a] if isinstance(a, str) and a in ("nc", "anchors") else a for a in args]
        n = max(round(n * gd), 1) if n > 1 else n
        inputs = [f] if isinstance(f, int) else list(f)
        if name in _CHANNEL_MODULES:
            c1, c2 = channels[f], _make_divisible(args[0] * gw)
            args = [c1, c2, *args[1:]]
            if name == "C3":
                args.insert(2, n)  # C3 repeats its bottleneck inside
                n = 1
            elif name == "SPP":
                args[2] = tuple(args[2])
            module = _CHANNEL_MODULES[name]
        elif name == "Concat":
            c2, module = sum(channels[x] for x in inputs), Concat
        elif name == "nn.Upsample":
            c2, module = channels[f], nn.Upsample
        else:  # Detect
            module = AnchorDetect
            args = [nc, args[1], [channels[x] for x in inputs]]
            c2 = None
        layer = nn.Sequential(*(module(*args) for _ in range(n))) if n > 1 else module(*args)
        layer.i, layer.f, layer.type = i, f, name
        layer.np = sum(p.numel() for p in layer.parameters())
        save.extend(x % i for x in inputs if x != -1)
        layers.append(layer)
        if i == 0:
            channels = []
        channels.append(c2)
    return nn.Sequential(*layers), sorted(save)


class YOLOv5Model(DetectionModel):
    """The network of YOLOv5 release v5.0 (anchor-based head with objectness) as an ultralytics ``DetectionModel``.

    Args:
        cfg: a v5.0 model yaml: a bundled name (``yolov5s-v5.0.yaml``), a path, or its dict.
        ch: input channels.
        nc: number of classes (replaces the yaml's ``nc``).
        verbose: print the layer summary.

    Raises:
        cawb.yolov5.sources.ModelYamlError: the yaml is missing, malformed, or not a v5.0 (anchor-based) one.
    """

    def __init__(self, cfg: str | Path | Mapping[str, Any] = "yolov5s-v5.0.yaml", ch: int = 3, nc: int | None = None,
                 verbose: bool = True):
        nn.Module.__init__(self)  # DetectionModel.__init__ would build the yaml with ultralytics' anchor-free parser
        self.yaml = deepcopy(load_model_yaml(cfg))
        if not is_v5_yaml(self.yaml):
            raise ModelYamlError(f"{self.yaml.get('yaml_file', 'model yaml')}: not a v5.0 model yaml (it needs "
                                 "top-level anchors and a Detect last layer)")
        self.yaml["channels"] = ch
        if nc and nc != self.yaml["nc"]:
            self.yaml["nc"] = nc
        self.model, self.save = parse_v5_model(self.yaml, ch)
        self.names = {i: f"{i}" for i in range(self.yaml["nc"])}
        self.inplace = True
        self.task = "detect"

        head = self.model[-1]
        size = 256  # strides from one forward pass, as v5.0 measured them
        with torch.no_grad():
            self.train()
            features = self.predict(torch.zeros(1, ch, size, size))
        head.stride.copy_(torch.tensor([size / f.shape[2] for f in features]))
        if head.check_anchor_order():
            LOGGER.info("cawb.yolov5: anchor order reversed to follow the strides")
        self.stride = head.stride
        head.initialize_biases()
        initialize_weights(self)  # BatchNorm eps 1e-3, momentum 0.03, as v5.0
        if verbose:
            self.info()
            LOGGER.info("")

    def _apply(self, fn):
        super()._apply(fn)
        self.stride = self.model[-1].stride  # the head's buffer moved; keep the model's alias on it
        return self

    def init_criterion(self):
        """v5.0's loss on ultralytics' batches, with the gains scaled as v5.0's train.py scaled them."""
        from cawb.yolov5.loss import UltralyticsBatchLoss

        return UltralyticsBatchLoss(self)


def build_model(cfg: str | Path | Mapping[str, Any], nc: int | None = None, ch: int = 3,
                verbose: bool = False) -> YOLOv5Model:
    """The v5.0 model the trainer trains: ``build_model("yolov5s-v5.0.yaml", nc=80)``.

    ``cfg`` is a bundled name, a path or a yaml dict; ``nc`` replaces the yaml's class count.
    """
    return YOLOv5Model(cfg, ch=ch, nc=nc, verbose=verbose)
