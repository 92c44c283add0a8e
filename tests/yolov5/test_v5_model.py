"""cawb/yolov5/model.py and sources.py: the v5.0 network, its yamls by name and path, its outputs and priors."""

import math

import numpy as np
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
    with pytest.raises(ModelYamlError, match=r"layer 1 module 'C2f' is unknown: a YOLOv5 yaml may use Focus, Conv"):
        build_model(data)
    plain = tmp_path / "plain.yaml"
    plain.write_text("nc: 2\nbackbone: []\nhead: []\n")
    with pytest.raises(ModelYamlError, match="plain.yaml: not a classic YOLOv5 model yaml"):
        YOLOv5Model(str(plain))
    with pytest.raises(ModelYamlError, match="model yaml nowhere.yaml not found"):
        build_model("nowhere.yaml")


# Parameter counts of YOLOv5 releases v6.0-v7.0 at nc=80, as YOLOv5 itself printed them: "YOLOv5n summary: ...,
# 1872157 parameters" (its model build, unfused) and "Fusing layers... YOLOv5s summary: 213 layers, 7225885
# parameters" (the release checkpoints loaded by its detect.py/val.py/export.py, BatchNorm folded into the convs),
# read in logs of YOLOv5 v6.x-v7.0 runs quoted in public repositories and issues. The unfused m and x counts were not
# found printed; their fused ones were.
V7_UNFUSED = {"n": 1_872_157, "s": 7_235_389, "l": 46_563_709}
V7_FUSED = {"n": 1_867_405, "s": 7_225_885, "m": 21_172_173, "l": 46_533_693, "x": 86_705_005}


@pytest.mark.parametrize("size", ["n", "s", "m", pytest.param("l", marks=pytest.mark.slow),
                                  pytest.param("x", marks=pytest.mark.slow)])
def test_parameter_counts_are_those_of_releases_v6_0_to_v7_0(size):
    model = build_model(f"yolov5{size}-v7.0.yaml", nc=80)
    if size in V7_UNFUSED:
        assert sum(p.numel() for p in model.parameters()) == V7_UNFUSED[size]
    model.eval().fuse(verbose=False)
    assert sum(p.numel() for p in model.parameters()) == V7_FUSED[size]


def test_v7_0_layout_has_a_6x6_stem_and_sppf_and_v5_0_anchors():
    model = build_model("yolov5s-v7.0.yaml", nc=80)
    stem = model.model[0].conv
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.padding) == (3, 32, (6, 6),
                                                                                                   (2, 2), (2, 2))
    assert [layer.type for layer in model.model][8:10] == ["C3", "SPPF"]
    assert [len(model.model[i].m) for i in (2, 4, 6, 8)] == [1, 2, 3, 1]  # C3 repeats 3/6/9/3 at depth 0.33
    head = model.model[-1]
    assert head.stride.tolist() == [8, 16, 32] and head.anchors.view(3, -1).tolist() == V5_ANCHORS
    assert model_kind("yolov5s-v7.0.yaml") == KIND_V5 and "yolov5x-v7.0.yaml" in BUNDLED_MODELS


def test_sppf_computes_what_spp_5_9_13_computes_with_its_activation():
    from ultralytics.nn.modules import SPP

    from cawb.yolov5.model import SPPF

    torch.manual_seed(0)
    fast, pyramid = SPPF(16, 24, 5).eval(), SPP(16, 24, (5, 9, 13)).eval()
    pyramid.load_state_dict(fast.state_dict())  # same convolutions; the pools hold no weights
    x = torch.randn(2, 16, 20, 20)
    with torch.no_grad():
        assert torch.allclose(fast(x), pyramid(x), atol=1e-6)
    assert isinstance(fast.cv1.act, torch.nn.SiLU)  # ultralytics' own SPPF leaves it out: not YOLOv5's


# YOLOv5 release v5.0's own models/yolov5s.yaml, as its repository holds it (Python None written as None, which
# YAML reads as the string 'None').
V5_0_OWN_YOLOV5S = """\
# parameters
nc: 80  # number of classes
depth_multiple: 0.33  # model depth multiple
width_multiple: 0.50  # layer channel multiple

# anchors
anchors:
  - [10,13, 16,30, 33,23]  # P3/8
  - [30,61, 62,45, 59,119]  # P4/16
  - [116,90, 156,198, 373,326]  # P5/32

# YOLOv5 backbone
backbone:
  # [from, number, module, args]
  [[-1, 1, Focus, [64, 3]],  # 0-P1/2
   [-1, 1, Conv, [128, 3, 2]],  # 1-P2/4
   [-1, 3, C3, [128]],
   [-1, 1, Conv, [256, 3, 2]],  # 3-P3/8
   [-1, 9, C3, [256]],
   [-1, 1, Conv, [512, 3, 2]],  # 5-P4/16
   [-1, 9, C3, [512]],
   [-1, 1, Conv, [1024, 3, 2]],  # 7-P5/32
   [-1, 1, SPP, [1024, [5, 9, 13]]],
   [-1, 3, C3, [1024, False]],  # 9
  ]

# YOLOv5 head
head:
  [[-1, 1, Conv, [512, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 6], 1, Concat, [1]],  # cat backbone P4
   [-1, 3, C3, [512, False]],  # 13

   [-1, 1, Conv, [256, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 4], 1, Concat, [1]],  # cat backbone P3
   [-1, 3, C3, [256, False]],  # 17 (P3/8-small)

   [-1, 1, Conv, [256, 3, 2]],
   [[-1, 14], 1, Concat, [1]],  # cat head P4
   [-1, 3, C3, [512, False]],  # 20 (P4/16-medium)

   [-1, 1, Conv, [512, 3, 2]],
   [[-1, 10], 1, Concat, [1]],  # cat head P5
   [-1, 3, C3, [1024, False]],  # 23 (P5/32-large)

   [[17, 20, 23], 1, Detect, [nc, anchors]],  # Detect(P3, P4, P5)
  ]
"""


def test_yolov5_own_v5_0_yaml_is_read_by_path(tmp_path):
    path = tmp_path / "yolov5s.yaml"
    path.write_text(V5_0_OWN_YOLOV5S)
    own, bundled = build_model(str(path), nc=80), build_model("yolov5s-v5.0.yaml", nc=80)
    assert sum(p.numel() for p in own.parameters()) == 7_276_605
    assert [tuple(p.shape) for p in own.parameters()] == [tuple(p.shape) for p in bundled.parameters()]
    assert model_kind(str(path)) == KIND_V5
    own.eval()
    x = torch.rand(1, 3, 64, 64)
    assert own(x)[0].shape == (1, 4 + 80, 3 * (8 * 8 + 4 * 4 + 2 * 2))  # the upsamplings work


def test_info_reports_gflops_as_yolov5_measured_them():
    # ultralytics' probe takes its channels from the first weight (12 behind Focus) and reported 0.0.
    v5 = build_model("yolov5s-v5.0.yaml", nc=80)
    layers, parameters, gradients, flops = v5.info()
    assert parameters == gradients == 7_276_605 and flops == pytest.approx(17.0, abs=0.2)  # v5.0 printed 17.1
    assert v5.info(imgsz=320)[3] == pytest.approx(flops / 4)
    v7 = build_model("yolov5s-v7.0.yaml", nc=80).eval().fuse(verbose=False)
    assert round(v7.info()[3], 1) == 16.4  # "YOLOv5s summary: 213 layers, 7225885 parameters, ..., 16.4 GFLOPs"
    assert v5.info(verbose=False) is None


def test_head_gives_box_corners_when_an_exporter_asks():
    model = build_model("yolov5n-v7.0.yaml", nc=2).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        centre = model(x)[0]
        model.model[-1].xyxy = True
        corners = model(x)[0]
    xy, wh = centre[:, :2], centre[:, 2:4]
    assert torch.allclose(corners[:, :2], xy - wh / 2) and torch.allclose(corners[:, 2:4], xy + wh / 2)
    assert torch.equal(corners[:, 4:], centre[:, 4:])


@pytest.mark.slow
def test_onnx_export_with_nms_runs_and_matches_ultralytics_nms(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx (pip install onnx) is needed for the ONNX export")
    from onnx.reference import ReferenceEvaluator
    from ultralytics.utils.nms import non_max_suppression

    from cawb import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov5n-v7.0.yaml")
    head = model.model.model[-1]
    with torch.no_grad():  # a few confident boxes, so that NMS has work to do
        for conv in head.m:
            conv.bias.view(head.na, -1)[:, 4:] += 6.0  # objectness and classes
    model.model.names = {i: f"class{i}" for i in range(head.nc)}
    saved = tmp_path / "v7n.pt"
    model.save(saved)  # the exporter writes beside the weights
    exported = YOLO(str(saved)).export(format="onnx", nms=True, imgsz=64, simplify=False, conf=0.25, iou=0.45,
                                       verbose=False)
    graph = onnx.load(exported)
    assert [[d.dim_value for d in out.type.tensor_type.shape.dim] for out in graph.graph.output] == [[1, 300, 6]]
    assert any(node.op_type == "NonMaxSuppression" for node in graph.graph.node)

    x = torch.rand(1, 3, 64, 64)
    onnx_rows = ReferenceEvaluator(exported).run(None, {"images": x.numpy()})[0][0]
    with torch.no_grad():
        expected = non_max_suppression(YOLO(str(saved)).model.float().eval()(x)[0], conf_thres=0.25, iou_thres=0.45,
                                       max_det=300)[0].numpy()
    # Scores within float error of the threshold may fall on either side in either runtime; those boxes can suppress
    # none of the higher-scored ones, so the sets above the threshold with a margin are the same.
    kept, expected = onnx_rows[onnx_rows[:, 4] > 0.26], expected[expected[:, 4] > 0.26]
    assert len(kept) == len(expected) > 0

    def in_order(rows):  # x0, y0, x1, y1, score, class; equal scores may come in either order
        return rows[np.lexsort(rows.T[::-1].round(3))]

    assert abs(in_order(kept) - in_order(expected)).max() < 1e-3
