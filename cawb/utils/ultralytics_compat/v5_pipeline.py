"""Where YOLOv5 v5.0 trained otherwise than ultralytics: the optimizer step with the clipping threshold as a
setting, the per-epoch schedule lagged by one epoch, the training augmentation configured per dataset, and what
ultralytics fixes in its code."""

from __future__ import annotations

import functools
from typing import Any, Callable

#: The gradient norm ``BaseTrainer.optimizer_step`` clips to in every supported release: a constant in its code.
ULTRALYTICS_MAX_GRAD_NORM = 10.0
#: The aspect-ratio threshold of ``RandomPerspective.box_candidates`` (its default argument): after the random affine,
#: a box whose ``max(w/h, h/w)`` reaches it is dropped.
ULTRALYTICS_BOX_AR_THR = 100.0
#: The names under which ultralytics' detection validator hands the trainer mAP50 and mAP50-95.
MAP50_KEY, MAP50_95_KEY = "metrics/mAP50(B)", "metrics/mAP50-95(B)"


def optimizer_step(trainer: Any, max_grad_norm: float) -> Any:
    """ultralytics' optimizer step (``BaseTrainer.optimizer_step``) with the clipping threshold as a setting; returns
    the gradients' total 2-norm before clipping, a 0-d tensor on their device (reading it waits for the GPU).

    In ultralytics' order: unscale the AMP gradients, clip their total norm to ``max_grad_norm`` (0: no clipping; the
    norm is still computed), step the optimizer through the scaler (which skips a step whose gradients overflowed),
    update the scaler, zero the gradients, update the EMA. ultralytics fixes its threshold in the method's code
    (:data:`ULTRALYTICS_MAX_GRAD_NORM`), so the method is written out here; a test holds it against the installed
    release's, bit for bit.
    """
    import torch

    trainer.scaler.unscale_(trainer.optimizer)
    foreach = False if trainer.device.type == "npu" else None  # as ultralytics: no fused kernels on Ascend NPUs
    if max_grad_norm:
        norm = torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), max_norm=max_grad_norm, foreach=foreach)
    else:
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # clip_grad_norm_'s own, torch >= 2.6
        if get_total_norm is not None:
            norm = get_total_norm(grads, foreach=foreach)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.optimizer.zero_grad()
    if trainer.ema:
        trainer.ema.update(trainer.model)
    return norm


def lag_epoch_schedule(trainer: Any) -> None:
    """From now on ``trainer`` trains epoch ``e >= 1`` at its per-epoch schedule's value for ``e - 1`` (epoch 0 at the
    value for 0), as a scheduler stepped after each epoch does; ultralytics steps it at each epoch's start. Its
    warmup is left as it is: the ramp goes toward ``lf(e)`` of the epoch it is in.

    Every supported release steps the scheduler right after the ``on_train_epoch_start`` callbacks, and the
    schedulers it is given (its ``LambdaLR``, cawb's ``CosineAnnealingWarmbootingLR``) compute the lr from
    ``last_epoch`` alone: a callback that sets ``last_epoch`` back before that step lags the schedule however it was
    set up (a resume, ``time=``, the out-of-memory retry). Registering it twice changes nothing.
    """
    trainer.add_callback("on_train_epoch_start", _step_to_the_epoch_before)


def _step_to_the_epoch_before(trainer: Any) -> None:
    trainer.scheduler.last_epoch = max(trainer.epoch - 2, -1)  # the step that follows lands on epoch - 1


def configure_train_augmentation(dataset: Any, *, mosaic_buffer: bool, box_ar_thr: float, multiplicative_hue: bool,
                                 albumentations: bool) -> None:
    """Configure the training augmentation ultralytics built for ``dataset`` (``v8_transforms``), now and at every
    rebuild (closing mosaic rebuilds it), on this dataset alone:

    * ``mosaic_buffer`` False: mosaic draws its partner images from the whole dataset (ultralytics draws them from
      the images it loaded last, its buffer, unless ``cache: ram``);
    * ``box_ar_thr``: the aspect-ratio threshold of the box filter after the random affine
      (:data:`ULTRALYTICS_BOX_AR_THR` is ultralytics' own);
    * ``multiplicative_hue``: ``RandomHSV`` multiplies the hue by its random gain, as it does saturation and value
      (ultralytics shifts it);
    * ``albumentations`` False: no ``Albumentations`` stage (ultralytics' blur, median blur, gray and CLAHE at
      p=0.01, which run when the albumentations package is installed).

    A setting equal to ultralytics' leaves its objects untouched. What is set on the objects is picklable, for
    dataloader workers that are spawned rather than forked. A concatenation of datasets has each part configured.
    """
    settings = dict(mosaic_buffer=mosaic_buffer, box_ar_thr=float(box_ar_thr), multiplicative_hue=multiplicative_hue,
                    albumentations=albumentations)
    for part in getattr(dataset, "datasets", None) or [dataset]:
        part.build_transforms = functools.partial(_configured_build, type(part).build_transforms, part, settings)
        _configure(part.transforms, settings)


def _configured_build(build: Callable, dataset: Any, settings: dict[str, Any], hyp: Any) -> Any:
    return _configure(build(dataset, hyp), settings)


def _configure(transforms: Any, settings: dict[str, Any]) -> Any:
    """``transforms`` (a Compose, as built) with ``settings`` applied to every transform in it, nested ones too."""
    from ultralytics.data.augment import (
        Albumentations,
        BaseMixTransform,
        Compose,
        Mosaic,
        RandomHSV,
        RandomPerspective,
    )

    seen: set[int] = set()
    pending = [transforms]
    while pending:
        transform = pending.pop()
        if id(transform) in seen:  # MixUp and CutMix share the pre-transform Compose
            continue
        seen.add(id(transform))
        if isinstance(transform, Compose):
            if not settings["albumentations"]:
                transform.transforms = [t for t in transform.transforms if not isinstance(t, Albumentations)]
            pending.extend(transform.transforms)
        elif isinstance(transform, BaseMixTransform) and transform.pre_transform is not None:
            pending.append(transform.pre_transform)
        if isinstance(transform, Mosaic) and not settings["mosaic_buffer"]:
            transform.buffer_enabled = False
        elif isinstance(transform, RandomPerspective) and settings["box_ar_thr"] != ULTRALYTICS_BOX_AR_THR:
            transform.box_candidates = functools.partial(type(transform).box_candidates, ar_thr=settings["box_ar_thr"])
        elif isinstance(transform, RandomHSV) and settings["multiplicative_hue"]:
            transform.apply_image = functools.partial(_multiplicative_hue_hsv, transform)
    return transforms


def _multiplicative_hue_hsv(transform: Any, labels: dict[str, Any], params: Any = None) -> dict[str, Any]:
    """``RandomHSV.apply_image`` with YOLOv5 v5.0's hue: each of hue, saturation and value multiplied by its random
    gain ``1 + uniform(-1, 1) * gain`` (v5.0's ``augment_hsv``), hue wrapping at 180 as OpenCV stores it."""
    import cv2
    import numpy as np

    image = labels["img"]
    gains = (transform.hgain, transform.sgain, transform.vgain)
    if image.shape[-1] != 3 or not any(gains):  # as ultralytics: only 3-channel images, no draw when all are 0
        return labels
    r = np.random.uniform(-1, 1, 3) * gains + 1
    x = np.arange(0, 256, dtype=r.dtype)
    lut = np.stack(((x * r[0]) % 180, np.clip(x * r[1], 0, 255), np.clip(x * r[2], 0, 255)), -1).astype(image.dtype)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    cv2.cvtColor(cv2.LUT(hsv, lut.reshape(1, 256, 3)), cv2.COLOR_HSV2BGR, dst=image)
    return labels
