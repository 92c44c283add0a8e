"""Classic YOLOv5's network (releases v5.0 to v7.0) as an ultralytics ``DetectionModel``, built from its yaml.

The backbone and neck are ultralytics' ``Focus``, ``Conv``, ``C3``, ``SPP``, ``Concat`` and ``nn.Upsample``, which
compute what YOLOv5's modules of the same names computed (Conv: conv without bias, BatchNorm, SiLU; the BatchNorm eps
1e-3 and momentum 0.03 come from ultralytics' ``initialize_weights``, as from YOLOv5's), and :class:`SPPF`, v6.0's
(ultralytics' module of that name differs). The head is :class:`AnchorDetect`, YOLOv5's Detect: per level a 1x1 conv
to ``anchors * (5 + nc)`` channels. v6.0 and v7.0 changed only the layers (a 6x6 Conv stem for Focus, SPPF for SPP);
head and loss stayed v5.0's.

Outputs of :class:`YOLOv5Model`:

* training: a list, one raw tensor ``[B, na, ny, nx, 5 + nc]`` per level (what :class:`cawb.yolov5.loss.YOLOv5Loss`
  takes);
* inference: ``(y, raw)`` with ``y`` shaped ``[B, 4 + nc, N]`` like ultralytics' Detect output: boxes ``x, y, w, h``
  in input pixels (``x0, y0, x1, y1`` when an exporter that embeds NMS asks for them), then per-class scores
  ``objectness * class probability``; ``y`` alone while traced or exported. ultralytics' validator, NMS, predictor
  and exporter take it as they take their own head's;
* ``augment=True``: YOLOv5's test-time augmentation (:mod:`cawb.yolov5.tta`).

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
from ultralytics.nn.modules import C3, SPP, Concat, Conv, Detect, Focus
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import get_num_gradients, get_num_params, initialize_weights

from cawb.yolov5.sources import ModelYamlError, is_v5_yaml, load_model_yaml

__all__ = ["SPPF", "AnchorDetect", "YOLOv5Model", "build_model", "parse_v5_model"]


class SPPF(nn.Module):
    """YOLOv5 v6.0's SPPF: ``cv1``, three chained max-pools of size ``k``, ``cv2`` over the four maps; what SPP(5, 9,
    13) computes, with fewer operations. (ultralytics' SPPF leaves ``cv1`` without its activation: not YOLOv5's.)"""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


# Modules a YOLOv5 yaml may name, with how their arguments read (channels are the first argument of each).
_CHANNEL_MODULES = {"Focus": Focus, "Conv": Conv, "C3": C3, "SPP": SPP, "SPPF": SPPF}
_MODULES = (*_CHANNEL_MODULES, "Concat", "nn.Upsample", "Detect")


def _make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


class AnchorDetect(Detect):
    """YOLOv5's Detect head: per level a 1x1 conv to ``na * (5 + nc)`` channels, decoded with the level's anchors.

    Args:
        nc: number of classes.
        anchors: per level a flat list ``[w0, h0, w1, h1, ...]`` in input pixels, in stride order.
        ch: input channels per level.

    Buffers: ``anchors`` ``[nl, na, 2]`` in pixels and ``stride`` ``[nl]`` (set by :class:`YOLOv5Model`).

    It is an ultralytics ``Detect`` by type only, none of that head's layers: ultralytics' exporter embeds NMS only
    behind a ``Detect`` (and sets ``export``, ``max_det``, ``xyxy`` on it), and its model code treats a ``Detect``
    head's stride and anchors as the head's own. What ultralytics' code reads of a ``Detect`` beyond that finds an
    empty box branch (``cv2``) and no one-to-one branch.
    """

    cv2 = ()  # no distribution-focal box branch: ultralytics' weight transfer between Detect heads compares none
    # Detect declares `anchors` at class level, which would shadow the buffer of the same name: read the buffer.
    anchors = property(lambda self: self._buffers["anchors"])

    def __init__(self, nc: int, anchors: list[list[float]], ch: list[int]):
        nn.Module.__init__(self)  # not Detect's: none of its layers
        self.nc = nc
        self.no = nc + 5  # x, y, w, h, objectness, classes
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        # set directly: register_buffer refuses a name the class already has (the property above)
        self._buffers["anchors"] = torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2)
        self.register_buffer("stride", torch.zeros(self.nl))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)

    def fuse(self) -> None:
        """Nothing to fuse (Detect's own drops a branch this head does not have)."""

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
        """``[B, 4 + nc, N]``: xywh in input pixels (xyxy when ``self.xyxy``), then objectness * class probability;
        levels in stride order, anchor-major within a level."""
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
            # ultralytics' exporter asks for corners when it embeds NMS
            boxes = (xy - wh / 2, xy + wh / 2) if self.xyxy else (xy, wh)
            out.append(torch.cat((*boxes, scores), -1).view(bs, -1, 4 + self.nc))
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
    """Build the layers of a YOLOv5 yaml dict: ``(nn.Sequential of layers, indices whose outputs are kept)``.

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
            raise ModelYamlError(f"{source}: layer {i} module {name!r} is unknown: a YOLOv5 yaml may use "
                                 f"{', '.join(_MODULES)}")
        args = [d[a] if isinstance(a, str) and a in ("nc", "anchors") else a for a in args]
        if name == "nn.Upsample":  # YOLOv5's own yamls write [None, 2, 'nearest'], which YAML reads as 'None'
            args = [None if a == "None" else a for a in args]
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
    """Classic YOLOv5's network (releases v5.0 to v7.0: anchor-based head with objectness) as an ultralytics
    ``DetectionModel``.

    Args:
        cfg: a YOLOv5 model yaml: a bundled name (``yolov5s-v5.0.yaml``, ``yolov5s-v7.0.yaml``), a path (YOLOv5's own
            ``models/yolov5s.yaml`` of those releases too), or its dict.
        ch: input channels.
        nc: number of classes (replaces the yaml's ``nc``).
        verbose: print the layer summary.

    Raises:
        cawb.yolov5.sources.ModelYamlError: the yaml is missing, malformed, or not a classic (anchor-based) one.
    """

    def __init__(self, cfg: str | Path | Mapping[str, Any] = "yolov5s-v5.0.yaml", ch: int = 3, nc: int | None = None,
                 verbose: bool = True):
        nn.Module.__init__(self)  # DetectionModel.__init__ would build the yaml with ultralytics' anchor-free parser
        self.yaml = deepcopy(load_model_yaml(cfg))
        if not is_v5_yaml(self.yaml):
            raise ModelYamlError(f"{self.yaml.get('yaml_file', 'model yaml')}: not a classic YOLOv5 model yaml (it "
                                 "needs top-level anchors and a Detect last layer)")
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

    def _predict_augment(self, x: torch.Tensor):
        """YOLOv5's test-time augmentation (ultralytics' own runs only behind its Detect head)."""
        from cawb.yolov5.tta import augmented_inference

        return augmented_inference(self, x), None

    def info(self, detailed: bool = False, verbose: bool = True, imgsz: int | list[int] = 640):
        """ultralytics' model summary, with GFLOPs at ``imgsz`` measured as YOLOv5 measured them: one pass of a
        ``stride x stride`` image with the yaml's input channels, scaled by area. (ultralytics' probe takes its
        channel count from the first weight, 12 behind the Focus stem, and reports 0.)

        Returns:
            ``(layers, parameters, gradients, GFLOPs)``, or None when not ``verbose`` (as ultralytics').
        """
        if not verbose:
            return None
        if detailed:
            from ultralytics.utils.torch_utils import model_info

            model_info(self, detailed=True, verbose=True, imgsz=imgsz)  # its per-layer table (its summary: no GFLOPs)
        layers = sum(1 for module in self.modules() if not module._modules)
        parameters, gradients = get_num_params(self), get_num_gradients(self)
        flops = self.gflops(imgsz)
        name = Path(self.yaml.get("yaml_file", "") or "").stem.replace("yolo", "YOLO") or "YOLOv5"
        fused = " (fused)" if self.is_fused() else ""
        shown = f", {flops:.1f} GFLOPs" if flops else ""
        LOGGER.info(f"{name} summary{fused}: {layers:,} layers, {parameters:,} parameters, {gradients:,} "
                    f"gradients{shown}")
        return layers, parameters, gradients, flops

    def gflops(self, imgsz: int | list[int] = 640) -> float:
        """GFLOPs of one ``imgsz`` image (an int or ``[h, w]``), 0.0 when thop is missing or profiling fails."""
        try:
            import thop
        except ImportError:
            return 0.0
        height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
        stride = max(int(self.stride.max()), 32)
        first = next(self.parameters())
        probe = torch.zeros(1, self.yaml.get("channels", 3), stride, stride, device=first.device, dtype=first.dtype)
        try:
            macs = thop.profile(deepcopy(self), inputs=(probe,), verbose=False)[0]
        except Exception:  # as ultralytics' probe: a summary line never fails a run
            return 0.0
        return macs * 2 / 1e9 * (height / stride) * (width / stride)

    def init_criterion(self):
        """v5.0's loss on ultralytics' batches, with the gains scaled as v5.0's train.py scaled them."""
        from cawb.yolov5.loss import UltralyticsBatchLoss

        return UltralyticsBatchLoss(self)


def build_model(cfg: str | Path | Mapping[str, Any], nc: int | None = None, ch: int = 3,
                verbose: bool = False) -> YOLOv5Model:
    """The classic YOLOv5 model the trainer trains: ``build_model("yolov5s-v5.0.yaml", nc=80)``.

    ``cfg`` is a bundled name, a path or a yaml dict; ``nc`` replaces the yaml's class count.
    """
    return YOLOv5Model(cfg, ch=ch, nc=nc, verbose=verbose)
