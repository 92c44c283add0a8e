"""cawb/yolov5/tta.py: YOLOv5's test-time augmentation for the classic models."""

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import scale_img

from cawb.yolov5 import build_model
from cawb.yolov5.tta import clip_tails, descale, scale_image


def test_scaled_images_are_padded_to_the_stride_with_grey():
    images = torch.zeros(1, 3, 64, 96)
    scaled = scale_image(images, 0.67, 32)
    assert scaled.shape == (1, 3, 64, 96)  # ceil(42.88 / 32) * 32 = 64, ceil(64.32 / 32) * 32 = 96
    assert scaled[..., :42, :64].eq(0).all() and scaled[..., 42:, :].eq(0.447).all()
    assert scale_image(images, 1.0, 32) is images


def test_descale_divides_by_the_scale_and_mirrors_x_of_the_flipped_pass():
    predictions = torch.tensor([[[10.0], [20.0], [4.0], [8.0], [0.9]]])  # x, y, w, h, score of one box
    back = descale(predictions, 0.5, 3, (100, 200))
    assert back[0, :, 0].tolist() == pytest.approx([200 - 20, 40, 8, 16, 0.9])
    assert descale(predictions, 0.5, None, (100, 200))[0, :4, 0].tolist() == pytest.approx([20, 40, 8, 16])


def test_clip_tails_drops_the_coarsest_level_of_the_first_pass_and_the_finest_of_the_last():
    # 3 levels of 16, 4 and 1 cells (x 3 anchors = 63 predictions); the values are the prediction indices
    first, middle, last = (torch.arange(63.0).view(1, 1, 63) for _ in range(3))
    clipped = clip_tails([first, middle, last], levels=3)
    assert clipped[0][0, 0].tolist() == list(range(60))  # the last 3 (P5) gone
    assert torch.equal(clipped[1], middle)
    assert clipped[2][0, 0].tolist() == list(range(48, 63))  # the first 48 (P3) gone


def test_augment_true_runs_yolov5s_three_passes_as_ultralytics_helpers_compute_them():
    model = build_model("yolov5n-v7.0.yaml", nc=3).eval()
    images = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        augmented, train_output = model(images, augment=True)
        passes = []
        for scale, flip in zip([1, 0.83, 0.67], [None, 3, None]):  # ultralytics' scale_img, _descale_pred, ...
            output = model._predict_once(scale_img(images.flip(flip) if flip else images, scale, gs=32))[0]
            passes.append(DetectionModel._descale_pred(output, flip, scale, images.shape[-2:]))
        expected = torch.cat(DetectionModel._clip_augmented(model, passes), -1)
        single = model(images)[0]
    assert train_output is None and torch.equal(augmented, expected)
    # the full-size pass, less its 3 x 3 x 4 P5 predictions, comes first
    assert torch.equal(augmented[..., : single.shape[-1] - 36], single[..., :-36])
