"""YOLOv5's test-time augmentation (``augment=True``) for the classic models of :mod:`cawb.yolov5`.

As YOLOv5's ``Model._forward_augment`` (releases v6.0 to v7.0), three inference passes over one batch:

1. the image as is (scale 1);
2. the image flipped left-right and resized to 0.83 of its size;
3. the image resized to 0.67 of its size;

each resized image (bilinear, ``int(side * scale)`` pixels) padded on the right and bottom with 0.447 (the ImageNet
mean grey) to a multiple of the model's largest stride. Each pass's boxes are brought back to the input's pixels
(divided by the scale; the flipped pass's ``x`` mirrored, ``width - x``); then the tails are clipped: the full-size
pass drops its coarsest level (the largest objects, which the smaller passes see better) and the 0.67 pass its
finest level (the smallest objects, which it sees worst). The three are joined along the prediction axis for one NMS.
(Release v5.0 joined them without clipping; v6.0 added the clipping.)

Functions take and return the inference layout of :class:`cawb.yolov5.model.YOLOv5Model`: ``[B, 4 + nc, N]``, boxes
``x, y, w, h`` in pixels, levels in stride order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["FLIPS", "PAD_VALUE", "SCALES", "augmented_inference", "clip_tails", "descale", "scale_image"]

#: The passes: image scale and flipped dimension (3, the width: left-right; None: no flip), as YOLOv5's.
SCALES = (1.0, 0.83, 0.67)
FLIPS = (None, 3, None)
#: The grey a resized image is padded with.
PAD_VALUE = 0.447


def scale_image(images: torch.Tensor, scale: float, grid: int) -> torch.Tensor:
    """``images`` ``[B, C, H, W]`` resized by ``scale`` (bilinear) and padded right and bottom with
    :data:`PAD_VALUE` to ``ceil(side * scale / grid) * grid``; returned unchanged at scale 1."""
    if scale == 1.0:
        return images
    height, width = images.shape[2:]
    size = (int(height * scale), int(width * scale))
    resized = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    padded_height, padded_width = (math.ceil(side * scale / grid) * grid for side in (height, width))
    return F.pad(resized, [0, padded_width - size[1], 0, padded_height - size[0]], value=PAD_VALUE)


def descale(predictions: torch.Tensor, scale: float, flip: int | None, image_size: tuple[int, int]) -> torch.Tensor:
    """Boxes of a pass on a scaled (and, ``flip == 3``, left-right flipped) image, in the pixels of the
    ``image_size`` ``(H, W)`` input."""
    boxes = predictions[:, :4] / scale
    if flip == 3:  # left-right: x mirrored about the width
        boxes = torch.cat((image_size[1] - boxes[:, :1], boxes[:, 1:]), 1)
    return torch.cat((boxes, predictions[:, 4:]), 1)


def clip_tails(passes: list[torch.Tensor], levels: int) -> list[torch.Tensor]:
    """The passes with the first one's coarsest level and the last one's finest level left out.

    Each level has 4 times the cells of the next (strides double), so of a pass's ``N`` predictions the coarsest
    level holds ``N / (1 + 4 + ... + 4**(levels - 1))`` and the finest ``4**(levels - 1)`` times that.
    """
    cells = sum(4**level for level in range(levels))
    first, last = passes[0], passes[-1]
    coarsest = first.shape[-1] // cells
    finest = (last.shape[-1] // cells) * 4 ** (levels - 1)
    return [first[..., :-coarsest], *passes[1:-1], last[..., finest:]]


def augmented_inference(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The joined predictions ``[B, 4 + nc, N1 + N2 + N3]`` of the three passes (see the module docstring) of a
    :class:`~cawb.yolov5.model.YOLOv5Model`."""
    image_size = tuple(images.shape[-2:])
    grid = int(model.stride.max())
    passes = []
    for scale, flip in zip(SCALES, FLIPS):
        flipped = images.flip(flip) if flip else images
        output = model._predict_once(scale_image(flipped, scale, grid))
        passes.append(descale(output[0] if isinstance(output, (list, tuple)) else output, scale, flip, image_size))
    return torch.cat(clip_tails(passes, model.model[-1].nl), -1)
