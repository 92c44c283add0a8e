"""cawb/yolov5/model.py and sources.py: the v5.0 network, its yamls by name and path, its outputs and priors."""

import math

import pytest
import torch

from cawb.yolov5 import BUNDLED_MODELS, KIND_ULTRALYTICS, KIND_V5, build_model, bundled_model_yaml, model_kind
from cawb.yolov5.model import YOLOv5Model
from cawb.yolov5.sources import ModelYamlError, load_model_yaml

V5_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


@pytest.mark.parametrize("size,parameters", [("s", 7_276_605), ("m", 21_375_645), ("l", 47_056_765),
                                             ("x", 87_775_965)])
def test_parameter_counts_are_those_of_release_v5_0(size, parameters):
    model = build_model(f"yolov5{size}-v5.0.yaml", nc=80)
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_bundled_yamls_hold_v5_0_anchors_and_scales():
    scales = {"n": (0.33, 0.25), "s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}
    for name in BUNDLED_MODELS:
        data = load_model_yaml(name)
        assert data["anchors"] == V5_ANCHORS
        assert (data["depth_multiple"], data["width_multiple"]) == scales[name[len("yolov5")]]
        assert model_kind(name) == KIND_V5
    assert "not part of release v5.0" in bundled_model_yaml("yolov5n-v5.0.yaml").read_text()


def test_yaml_by_name_by_path_and_as_dict_build_the_same_network(tmp_path):
    path = tmp_path / "my-v5.yaml"
    path.write_text(bundled_model_yaml("yolov5n-v5.0.yaml").read_text())
    by_name, by_path = build_model("yolov5n-v5.0.yaml", nc=3), build_model(str(path), nc=3)
    by_dict = build_model(by_path.yaml, nc=3)
    shapes = [tuple(p.shape) for p in by_name.parameters()]
    assert shapes == [tuple(p.shape) for p in by_path.parameters()] == [tuple(p.shape) for p in by_dict.parameters()]
    assert by_path.yaml["yaml_file"] == str(path) and model_kind(str(path)) == KIND_V5


def test_kind_of_ultralytics_models_and_unknown_sources():
    assert model_kind("yolov5s.yaml") == KIND_ULTRALYTICS  # ultralytics' name: resolved by ultralytics
    assert model_kind({"backbone": [], "head": [[[15, 18, 21], 1, "Detect", ["nc"]]]}) == KIND_ULTRALYTICS
    assert model_kind("no/such/model.pt") == KIND_ULTRALYTICS
    assert model_kind(build_model("yolov5n-v5.0.yaml", nc=1)) == KIND_V5


def test_layout_strides_anchors_and_batchnorm_follow_v5_0():
    model = build_model("yolov5s-v5.0.yaml", nc=80)
    head = model.model[-1]
    assert [layer.type for layer in model.model][:10] == ["Focus", "Conv", "C3", "Conv", "C3", "Conv", "C3", "Conv",
                                                         "SPP", "C3"]
    assert head.f == [17, 20, 23] and head.na == 3 and head.no == 85
    assert head.stride.tolist() == [8, 16, 32] and model.stride is head.stride
    assert head.anchors.view(3, -1).tolist() == V5_ANCHORS
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.03 for m in norms)
    assert all(isinstance(m.act, torch.nn.SiLU) for m in model.modules() if type(m).__name__ == "Conv")


def test_reversed_anchors_are_put_in_stride_order():
    data = load_model_yaml("yolov5n-v5.0.yaml")
    data["anchors"] = V5_ANCHORS[::-1]
    assert build_model(data, nc=2).model[-1].anchors.view(3, -1).tolist() == V5_ANCHORS


def test_bias_prior_of_v5_0():
    nc = 7
    model = build_model("yolov5n-v5.0.yaml", nc=nc)
    head = model.model[-1]
    for conv, stride in zip(head.m, (8, 16, 32)):
        bias = conv.bias.detach().view(3, 5 + nc)
        bound = 1 / math.sqrt(conv.in_channels)  # PyTorch's initial bias is uniform in +-bound; the prior is added
        assert (bias[:, 4] - math.log(8 / (640 / stride) ** 2)).abs().max() <= bound
        assert (bias[:, 5:] - math.log(0.6 / (nc - 0.99))).abs().max() <= bound


def test_training_output_is_raw_per_level_and_inference_is_decoded_like_ultralytics_detect():
    nc = 2
    model = build_model("yolov5n-v5.0.yaml", nc=nc)
    x = torch.rand(2, 3, 64, 96)
    model.train()
    raw = model(x)
    assert [tuple(r.shape) for r in raw] == [(2, 3, 8, 12, 7), (2, 3, 4, 6, 7), (2, 3, 2, 3, 7)]

    head = model.model[-1]
    logits = torch.tensor([0.3, -0.2, 0.5, -1.0, 1.5, 0.2, -0.7])  # x, y, w, h, objectness, 2 classes
    with torch.no_grad():
        for conv in head.m:
            conv.weight.zero_()
            conv.bias.copy_(logits.repeat(3))
    model.eval()
    y, raw = model(x)
    assert y.shape == (2, 4 + nc, 3 * (8 * 12 + 4 * 6 + 2 * 3)) and len(raw) == 3
    s = logits.sigmoid()
    # The P4 level (stride 16) starts after the 3 * 8 * 12 P3 predictions; its anchor 1 is (62, 45) px; take cell
    # (gx 4, gy 2) of that anchor: index 288 + 1 * (4 * 6) + 2 * 6 + 4.
    index = 3 * 8 * 12 + 1 * 24 + 2 * 6 + 4
    expected = torch.tensor([(2 * s[0] - 0.5 + 4) * 16, (2 * s[1] - 0.5 + 2) * 16, (2 * s[2]) ** 2 * 62,
                             (2 * s[3]) ** 2 * 45, s[4] * s[5], s[4] * s[6]])
    assert torch.allclose(y[1, :, index], expected, atol=1e-4)


def test_traced_inference_returns_the_decoded_tensor_alone():
    model = build_model("yolov5n-v5.0.yaml", nc=1).eval()
    traced = torch.jit.trace(model, torch.zeros(1, 3, 64, 64), strict=False)
    out = traced(torch.zeros(1, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 5, 252)


def test_unknown_module_and_non_v5_yaml_are_refused_naming_the_file(tmp_path):
    data = load_model_yaml("yolov5n-v5.0.yaml")
    data["backbone"][1][2] = "C2f"
    with pytest.raises(ModelYamlError, match=r"layer 1 module 'C2f' is unknown: a v5.0 yaml may use Focus, Conv"):
        build_model(data)
    plain = tmp_path / "plain.yaml"
    plain.write_text("nc: 2\nbackbone: []\nhead: []\n")
    with pytest.raises(ModelYamlError, match="plain.yaml: not a v5.0 model yaml"):
        YOLOv5Model(str(plain))
    with pytest.raises(ModelYamlError, match="model yaml nowhere.yaml not found"):
        build_model("nowhere.yaml")
