"""cawb/yolov5/checkpoint_import.py and cawb-import-yolov5: checkpoints of the YOLOv5 repository, read without its
code, give a model whose outputs equal the original network's.

The checkpoints are made here by stand-ins for YOLOv5's classes (classic_yolov5.py: a ``models/`` package written
into the test's directory, classes named and computing like YOLOv5's), saved as YOLOv5's train.py saves them.
"""

import copy
import os
import sys

import pytest
import torch
import yaml
from classic_yolov5 import save_checkpoint, yolov5_classes

from cawb.cli.import_yolov5 import main as import_main
from cawb.yolov5 import KIND_V5, model_kind
from cawb.yolov5.checkpoint_import import (
    CheckpointImportError,
    StandIn,
    import_yolov5_checkpoint,
    is_yolov5_checkpoint,
    read_restricted,
)
from cawb.yolov5.sources import bundled_model_yaml

# Anchors as an AutoAnchor run leaves them: not the yaml's, not whole pixels.
EVOLVED = [[9.5, 12.25, 17.75, 29.5, 31.0, 24.5], [28.5, 60.0, 64.25, 44.0, 57.5, 121.0],
           [118.0, 88.5, 150.25, 201.0, 380.5, 320.0]]


def yolov5_yaml(release: str, anchors=None, width=None) -> dict:
    """The nano layout of ``release`` written as YOLOv5's yamls write it (None for Python's None); ``width``
    replaces its width multiple (smaller: quicker tests of what does not depend on it)."""
    data = yaml.safe_load(bundled_model_yaml(f"yolov5n-{release}.yaml").read_text())
    if width is not None:
        data["width_multiple"] = width
    for layer in data["head"]:
        if layer[2] == "nn.Upsample":
            layer[3] = ["None", 2, "nearest"]
    if anchors is not None:
        data["anchors"] = anchors
    return data


def build_and_save(directory, release: str, nc: int = 3, anchors=None, before_save=None, width=0.125):
    """A YOLOv5 model of ``release`` (random weights and BatchNorm statistics) saved as YOLOv5 saves it: the
    checkpoint's path and the network as saved (half precision, back in float32, eval mode)."""
    with yolov5_classes(directory, release) as yolo:
        torch.manual_seed(0)
        model = yolo.Model(yolov5_yaml(release, anchors, width), nc=nc)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 1.5)
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
        model.names = [f"thing{i}" for i in range(nc)]
        if before_save is not None:
            before_save(model, yolo)
        path = save_checkpoint(model, directory / f"yolov5-{release}.pt", release)
        original = copy.deepcopy(model).half().float().eval()
    return path, original


@pytest.mark.parametrize("release", ["v5.0", "v7.0"])
def test_imported_model_computes_what_the_original_network_computes(tmp_path, release):
    path, original = build_and_save(tmp_path, release, anchors=EVOLVED, width=0.25)  # nano, as released for v7.0
    assert "models" not in sys.modules  # the stand-ins are gone: the import cannot use them
    model = import_yolov5_checkpoint(path).eval()
    assert "models" not in sys.modules  # and did not import them

    head = model.model[-1]
    assert head.anchors.view(3, -1).tolist() == EVOLVED  # pixels (YOLOv5 saved them divided by the stride)
    assert head.stride.tolist() == [8, 16, 32] and model.names == {0: "thing0", 1: "thing1", 2: "thing2"}
    assert model_kind(path) == KIND_V5 and is_yolov5_checkpoint(path)

    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        expected, expected_raw = original(x)  # [B, N, 5 + nc]: x, y, w, h, objectness, class probabilities
        decoded, raw = model(x)  # [B, 4 + nc, N]: x, y, w, h, objectness * class probability
    assert all(torch.equal(a, b) for a, b in zip(raw, expected_raw))
    assert torch.equal(decoded[:, :4], expected[..., :4].transpose(1, 2))
    assert torch.equal(decoded[:, 4:], (expected[..., 5:] * expected[..., 4:5]).transpose(1, 2))


def test_the_unpickler_runs_nothing_a_checkpoint_names(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "weights": torch.ones(2)}, path)
    loaded = read_restricted(path)
    assert isinstance(loaded["model"], StandIn) and type(loaded["model"]).path in ("posix.system", "os.system")
    assert torch.equal(loaded["weights"], torch.ones(2))  # tensors are tensors
    assert not marker.exists() and not is_yolov5_checkpoint(path)
    with pytest.raises(CheckpointImportError, match="evil.pt: not a YOLOv5 detection checkpoint"):
        import_yolov5_checkpoint(path)
    assert not marker.exists()


def _leaky(model, yolo):
    model.model[1].act = torch.nn.LeakyReLU(0.1)


def _bottleneck_csp(model, yolo):
    model.yaml["backbone"][2][2] = "BottleneckCSP"


def _segmentation(model, yolo):
    model.__class__ = type("SegmentationModel", (type(model),), {"__module__": "models.yolo"})
    sys.modules["models.yolo"].SegmentationModel = model.__class__


@pytest.mark.parametrize("change,message", [
    (_leaky, r"layer model\.1 uses torch\.nn\.modules\.activation\.LeakyReLU; cawb builds YOLOv5's SiLU"),
    (_bottleneck_csp, r"cannot import: .*layer 2 module 'BottleneckCSP' is unknown"),
    (_segmentation, r"not a YOLOv5 detection checkpoint \(its model is models\.yolo\.SegmentationModel"),
])
def test_networks_cawb_does_not_build_as_saved_are_refused_in_one_line(tmp_path, change, message):
    path, _ = build_and_save(tmp_path, "v7.0", before_save=change)
    with pytest.raises(CheckpointImportError, match=message):
        import_yolov5_checkpoint(path)


def test_an_ultralytics_checkpoint_is_not_a_yolov5_one(tmp_path):
    from cawb import YOLO

    path = tmp_path / "ultra.pt"
    YOLO("yolov5n-v5.0.yaml").save(path)
    assert not is_yolov5_checkpoint(path) and not is_yolov5_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointImportError, match="its model is cawb.yolov5.model.YOLOv5Model"):
        import_yolov5_checkpoint(path)


def test_the_command_writes_an_ultralytics_checkpoint_once(tmp_path, capsys):
    from ultralytics import YOLO as UltralyticsYOLO

    from cawb import YOLO

    source, _ = build_and_save(tmp_path, "v5.0")
    output = tmp_path / "out" / "imported.pt"
    assert import_main([str(source), str(output)]) == 0
    printed = capsys.readouterr().out
    assert f"{output}: " in printed and "3 classes, strides [8, 16, 32], anchors (pixels) [[10.0, 13.0," in printed
    written = output.read_bytes()
    assert import_main([str(source), str(output)]) == 2  # never over an existing file
    assert "already exists; the import never overwrites a file" in capsys.readouterr().err
    assert output.read_bytes() == written
    assert import_main([str(output), str(tmp_path / "again.pt")]) == 2  # not a YOLOv5 checkpoint
    assert "not a YOLOv5 detection checkpoint" in capsys.readouterr().err
    assert import_main([str(source), str(tmp_path / "x.onnx")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["yolov5-v5.0.pt"]

    # ultralytics' own YOLO reads the written file; it predicts what cawb predicts from the YOLOv5 checkpoint
    image = (torch.rand(96, 128, 3) * 255).to(torch.uint8).numpy()
    ours = YOLO(str(source)).predict(image, imgsz=128, conf=0.001, verbose=False)[0].boxes.data
    theirs = UltralyticsYOLO(str(output)).predict(image, imgsz=128, conf=0.001, verbose=False)[0].boxes.data
    assert len(ours) > 0 and torch.allclose(ours, theirs, atol=1e-3)


def test_weights_and_load_take_a_yolov5_checkpoint(tmp_path):
    from cawb import YOLO
    from cawb.training.config import plan_run

    source, original = build_and_save(tmp_path, "v7.0", width=0.25)  # yolov5n-v7.0's layout
    config = plan_run(weights=str(source), epochs=1, project=str(tmp_path / "runs"), resolve_dataset=False)
    assert config.kind == KIND_V5 and config.model_source == str(source) and config.weights is None
    loaded = YOLO("yolov5n-v7.0.yaml").load(str(source)).model  # 80 classes: all but the class convs transfer
    assert torch.equal(loaded.model[0].conv.weight, original.model[0].conv.weight)


@pytest.mark.slow
def test_training_starts_from_the_imported_weights(tmp_path, tiny_shapes):
    from cawb.training.train import train

    source, _ = build_and_save(tmp_path, "v5.0", width=0.25)  # 3 classes, as the shapes data
    imported = import_yolov5_checkpoint(source).state_dict()
    seen = {}

    def at_start(trainer):
        seen.update({key: value.detach().clone() for key, value in trainer.model.state_dict().items()})

    result = train(callbacks={"on_train_start": at_start}, data=str(tiny_shapes), weights=str(source), epochs=1,
                   imgsz=64, batch=8, workers=0, device="cpu", autoanchor=False, plots=False,
                   project=str(tmp_path / "runs"), name="from-yolov5")
    assert result.weights.is_file()
    assert seen.keys() == imported.keys()
    assert all(torch.equal(seen[key].float(), imported[key].float()) for key in imported)
