"""Stand-ins for the YOLOv5 repository's model classes, to write checkpoints the way YOLOv5 does without its code.

:func:`write_module_tree` writes a tiny ``models/`` package (``common.py``, ``yolo.py``) into a directory: classes
named like YOLOv5's (``models.common.Conv``, ``models.yolo.Model``, ...) that build a network from a YOLOv5 yaml and
compute what YOLOv5's compute (its parse_model, its Detect decoding with anchors kept in grid units, v5.0's
``anchor_grid`` buffer or v6.0+'s run-time scaling), written here from YOLOv5's definitions. :func:`save_checkpoint`
pickles a model as YOLOv5's train.py does (``{'model': model.half(), ...}``).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path

COMMON = '''
import torch
import torch.nn as nn


def autopad(k, p=None):
    return (k // 2 if isinstance(k, int) else [x // 2 for x in k]) if p is None else p


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU() if act is True else (act if isinstance(act, nn.Module) else nn.Identity())

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*[Bottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)])

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class SPP(nn.Module):
    def __init__(self, c1, c2, k=(5, 9, 13)):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k])

    def forward(self, x):
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Focus(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, act=True):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, s, p, g, act)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class Concat(nn.Module):
    def __init__(self, dimension=1):
        super().__init__()
        self.d = dimension

    def forward(self, x):
        return torch.cat(x, self.d)
'''

YOLO = '''
import math
from copy import deepcopy

import torch
import torch.nn as nn

from models.common import C3, SPP, SPPF, Concat, Conv, Focus

RELEASE = "{release}"


class Detect(nn.Module):
    stride = None

    def __init__(self, nc=80, anchors=(), ch=()):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.grid = [torch.zeros(1)] * self.nl
        a = torch.tensor(anchors).float().view(self.nl, -1, 2)
        self.register_buffer("anchors", a)
        if RELEASE == "v5.0":  # v5.0 keeps the anchors in pixels too, and decodes with those
            self.register_buffer("anchor_grid", a.clone().view(self.nl, 1, -1, 1, 1, 2))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)

    def forward(self, x):
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if not self.training:
                yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
                grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
                if RELEASE == "v5.0":
                    anchor_grid = self.anchor_grid[i]
                else:  # v6.0 on: grid-unit anchors scaled at run time
                    anchor_grid = (self.anchors[i].clone() * self.stride[i]).view(1, self.na, 1, 1, 2)
                y = x[i].sigmoid()
                y[..., 0:2] = (y[..., 0:2] * 2 - 0.5 + grid) * self.stride[i]
                y[..., 2:4] = (y[..., 2:4] * 2) ** 2 * anchor_grid
                z.append(y.view(bs, -1, self.no))
        return x if self.training else (torch.cat(z, 1), x)


def make_divisible(x, divisor):
    return math.ceil(x / divisor) * divisor


def parse_model(d, ch):
    anchors, nc, gd, gw = d["anchors"], d["nc"], d["depth_multiple"], d["width_multiple"]
    na = len(anchors[0]) // 2
    no = na * (nc + 5)
    layers, save, c2 = [], [], ch[-1]
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):
        m = eval(m) if isinstance(m, str) else m
        for j, a in enumerate(args):
            try:
                args[j] = eval(a) if isinstance(a, str) else a
            except NameError:
                pass
        n = max(round(n * gd), 1) if n > 1 else n
        if m in (Conv, Focus, C3, SPP, SPPF):
            c1, c2 = ch[f], args[0]
            if c2 != no:
                c2 = make_divisible(c2 * gw, 8)
            args = [c1, c2, *args[1:]]
            if m is C3:
                args.insert(2, n)
                n = 1
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        elif m is Detect:
            args.append([ch[x] for x in f])
        else:
            c2 = ch[f]
        m_ = nn.Sequential(*[m(*args) for _ in range(n)]) if n > 1 else m(*args)
        t = str(m)[8:-2].replace("__main__.", "")
        m_.i, m_.f, m_.type, m_.np = i, f, t, sum(x.numel() for x in m_.parameters())
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(m_)
        if i == 0:
            ch = []
        ch.append(c2)
    return nn.Sequential(*layers), sorted(save)


class {model_class}(nn.Module):
    def __init__(self, cfg, ch=3, nc=None):
        super().__init__()
        self.yaml = deepcopy(cfg)
        ch = self.yaml["ch"] = self.yaml.get("ch", ch)
        if nc and nc != self.yaml["nc"]:
            self.yaml["nc"] = nc
        self.model, self.save = parse_model(deepcopy(self.yaml), ch=[ch])
        self.names = [str(i) for i in range(self.yaml["nc"])]
        m = self.model[-1]
        s = 256
        m.stride = torch.tensor([s / x.shape[-2] for x in self.forward(torch.zeros(1, ch, s, s))])
        m.anchors /= m.stride.view(-1, 1, 1)
        self.stride = m.stride
        for mi, si in zip(m.m, m.stride):
            b = mi.bias.view(m.na, -1)
            b.data[:, 4] += math.log(8 / (640 / si) ** 2)
            b.data[:, 5:] += math.log(0.6 / (m.nc - 0.99))
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps, module.momentum = 1e-3, 0.03

    def forward(self, x):
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x

{alias}
'''


def write_module_tree(directory: Path, release: str) -> Path:
    """The ``models`` package of a YOLOv5 ``release`` ("v5.0" or "v7.0") written under ``directory``."""
    package = directory / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "common.py").write_text(COMMON)
    v7 = release != "v5.0"
    (package / "yolo.py").write_text(YOLO.format(release=release, model_class="DetectionModel" if v7 else "Model",
                                                 alias="Model = DetectionModel" if v7 else ""))
    return directory


@contextmanager
def yolov5_classes(directory: Path, release: str):
    """``models.yolo`` importable from a fresh module tree while the block runs; gone from sys.modules after."""
    write_module_tree(directory, release)
    sys.path.insert(0, str(directory))
    try:
        import models.yolo

        yield models.yolo
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == "models" or name.startswith("models.")]:
            del sys.modules[name]


def save_checkpoint(model, path: Path, release: str) -> Path:
    """``model`` pickled as YOLOv5's train.py of ``release`` saves a finished run (its strip_optimizer's form)."""
    import datetime

    import torch

    if release == "v5.0":
        checkpoint = {"epoch": -1, "best_fitness": None, "training_results": None, "model": deepcopy(model).half(),
                      "optimizer": None, "wandb_id": None}
    else:
        checkpoint = {"epoch": -1, "best_fitness": None, "model": deepcopy(model).half(), "ema": None,
                      "updates": None, "optimizer": None, "opt": {"imgsz": 640, "hyp": "hyp.scratch-low.yaml"},
                      "git": None, "date": datetime.datetime.now().isoformat()}
    torch.save(checkpoint, path)
    return path
