import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

import json
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from pycocotools.coco import COCO

from cawb.datasets.resolve import resolve_dataset_yaml
from cawb.datasets.shapes import CATEGORY_IDS, generate_shapes_dataset
from cawb.experiment.evaluate import coco_bbox_eval, coco_detections, coco_image_ids, evaluate_coco
from cawb.experiment.v5_metric import v5_map

# Measured |pycocotools - ultralytics| on shapes models (mAP 0.05-0.63, 32-48 val images): 0.002-0.017 for both
# mAP50 and mAP50-95. The two interpolate the precision-recall curve differently (COCO: step at 101 recall points;
# ultralytics: trapezoid over the linearly interpolated envelope), which on ~25 objects per class (one recall step
# = 0.04) moves AP by up to ~0.02. A wrong class->category mapping, image id or box scaling costs far more.
MAP_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return resolve_dataset_yaml(
        generate_shapes_dataset(tmp_path_factory.mktemp("shapes") / "ds", train_images=32, val_images=32)
    )


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory) -> Path:
    """yolov5n trained briefly from scratch; small batch and nbs so 25 epochs make 200 optimizer steps (~25 s)."""
    from ultralytics import YOLO

    project = tmp_path_factory.mktemp("runs")
    model = YOLO("yolov5n.yaml")
    model.train(
        data=str(shapes.yaml),
        epochs=25,
        imgsz=128,
        batch=4,
        nbs=4,
        optimizer="SGD",
        lr0=0.01,
        warmup_epochs=0,
        mosaic=0.0,
        val=False,
        plots=False,
        device="cpu",
        workers=0,
        project=str(project),
        name="train",
        seed=0,
        deterministic=True,
        verbose=False,
    )
    return Path(model.trainer.last)


def _perfect_detections(shapes, category_ids):
    """The val split's YOLO labels (not its JSON) as score-1 detections in original-image pixels."""
    gt = COCO(str(shapes.val_json))
    image_ids = coco_image_ids(gt.dataset)
    detections = []
    for png in sorted(shapes.val[0].glob("*.png")):
        h, w = cv2.imread(str(png)).shape[:2]
        rows = [list(map(float, r.split())) for r in (shapes.root / "labels" / "val" / f"{png.stem}.txt").open()]
        boxes = [((x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w, (y + bh / 2) * h) for _, x, y, bw, bh in rows]
        detections += coco_detections(
            png.name, boxes, [1.0] * len(rows), [r[0] for r in rows], image_ids=image_ids, category_ids=category_ids
        )
    return gt, detections


def test_export_maps_class_index_to_category_id_and_xyxy_to_top_left_xywh():
    records = coco_detections(
        "a.png",
        [(10, 20, 40, 60), (0, 0, 5, 5), (1.5, 2.5, 3.5, 4.5)],
        [0.9, 0.5, 0.25],
        [2.0, 0.0, 1.0],
        image_ids={"a.png": 42},
        category_ids=CATEGORY_IDS,
    )
    assert [r["category_id"] for r in records] == [CATEGORY_IDS[2], CATEGORY_IDS[0], CATEGORY_IDS[1]]
    assert [r["bbox"] for r in records] == [[10, 20, 30, 40], [0, 0, 5, 5], [1.5, 2.5, 2.0, 2.0]]
    assert {r["image_id"] for r in records} == {42}
    assert [r["score"] for r in records] == [0.9, 0.5, 0.25]


def test_unknown_image_and_duplicate_file_names_are_refused():
    with pytest.raises(ValueError, match="b.png"):
        coco_detections("b.png", [(0, 0, 1, 1)], [1.0], [0], image_ids={"a.png": 1}, category_ids=CATEGORY_IDS)
    with pytest.raises(ValueError, match="x.png"):
        coco_image_ids({"images": [{"id": 1, "file_name": "a/x.png"}, {"id": 2, "file_name": "b/x.png"}]})


def test_ground_truth_as_predictions_scores_map_one(shapes):
    gt, detections = _perfect_detections(shapes, shapes.category_ids)
    assert len(detections) == len(gt.getAnnIds()) > 0
    stats, summary = coco_bbox_eval(gt, detections)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)
    assert "Average Precision" in summary
    as_v5 = v5_map(gt.dataset, detections)
    assert as_v5.map50 == pytest.approx(1.0) and as_v5.map50_95 == pytest.approx(1.0)


def test_wrong_category_mapping_scores_zero(shapes):
    rotated = CATEGORY_IDS[1:] + CATEGORY_IDS[:1]  # every class exported under another class's id
    gt, detections = _perfect_detections(shapes, rotated)
    stats, _ = coco_bbox_eval(gt, detections)
    assert stats[1] == pytest.approx(0.0)


def test_no_detections_scores_zero_without_crashing(shapes):
    stats, _ = coco_bbox_eval(COCO(str(shapes.val_json)), [])
    assert len(stats) == 12 and stats[0] == 0.0 and stats[1] == 0.0


@pytest.mark.slow
def test_pycocotools_agrees_with_ultralytics_on_trained_weights(trained, shapes, tmp_path):
    result = evaluate_coco(trained, shapes.source, imgsz=128, save_dir=tmp_path / "eval")
    assert len(result["stats"]) == 12
    assert result["map50"] > 0.05  # the model learnt something, so agreement is not 0 == 0
    assert result["map50"] == pytest.approx(result["ultralytics_map50"], abs=MAP_TOLERANCE)
    assert result["map50_95"] == pytest.approx(result["ultralytics_map50_95"], abs=MAP_TOLERANCE)
    # v5.0's definition, from the same detections (no crowd boxes in this data; its matching and end of the curve
    # differ from both): a number of the same order
    assert 0 < result["v5_map50_95"] < result["v5_map50"] <= 1
    assert result["v5_map50"] == pytest.approx(result["map50"], abs=0.1)

    records = json.loads(result["predictions"].read_text())
    assert len(records) == result["num_detections"] > 0
    gt = COCO(str(shapes.val_json))
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt.dataset["images"]}
    assert {r["category_id"] for r in records} <= set(CATEGORY_IDS)
    for r in records:
        x, y, w, h = r["bbox"]
        width, height = sizes[r["image_id"]]  # KeyError: an id the ground truth does not have
        assert -0.01 <= x and -0.01 <= y and x + w <= width + 0.01 and y + h <= height + 0.01
        assert 0.001 <= r["score"] <= 1


@pytest.mark.slow
def test_no_detections_end_to_end(trained, shapes, tmp_path):
    result = evaluate_coco(trained, shapes.yaml, imgsz=128, conf=1.0, save_dir=tmp_path / "eval")
    assert result["num_detections"] == 0
    assert json.loads(result["predictions"].read_text()) == []
    assert result["map50"] == 0.0 and result["map50_95"] == 0.0 and result["ultralytics_map50"] == 0.0


@pytest.mark.slow
def test_model_and_data_with_different_class_counts_are_refused(trained, shapes, tmp_path):
    data = yaml.safe_load(shapes.yaml.read_text())
    data.update(names={0: "circle", 1: "rectangle"}, category_ids=list(CATEGORY_IDS[:2]))
    two_classes = tmp_path / "two.yaml"
    two_classes.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="predicts 3 classes but category_ids has 2"):
        evaluate_coco(trained, two_classes, imgsz=128, save_dir=tmp_path / "eval")


def test_data_without_coco_keys_is_refused_before_inference(shapes, tmp_path):
    data = yaml.safe_load(shapes.yaml.read_text())
    del data["category_ids"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(data))
    weights = tmp_path / "w.pt"
    torch.save({}, weights)  # a torch file, never loaded as a model: the data check comes first
    with pytest.raises(ValueError, match="category_ids"):
        evaluate_coco(weights, plain, imgsz=128, save_dir=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: torch.save({"weight": torch.zeros(2)}, p), "is not an ultralytics checkpoint (it holds a dict"),
        (lambda p: torch.save(torch.zeros(2), p), "is not an ultralytics checkpoint (it holds a Tensor)"),
        (lambda p: p.write_bytes(b"\x80\x04garbage"), "cannot be loaded ("),
        (lambda p: p.write_bytes(b"GIF89a garbage"), "is not a checkpoint"),
    ],
)
def test_weights_that_are_not_a_checkpoint_are_refused_before_anything_is_written(shapes, tmp_path, make, message):
    weights = tmp_path / "w.pt"
    make(weights)
    with pytest.raises(ValueError) as err:
        evaluate_coco(weights, shapes.source, imgsz=128, save_dir=tmp_path / "eval")
    assert str(err.value).startswith(f"weights {weights}: {message}") and "\n" not in str(err.value)
    assert not (tmp_path / "eval").exists()


def test_bad_sizes_and_output_places_are_refused_before_loading(shapes, tmp_path):
    (tmp_path / "file").write_text("x")
    weights = tmp_path / "w.pt"
    torch.save({}, weights)
    for kwargs, message in (({"imgsz": 16}, "imgsz=16 is invalid: it must be an integer >= 32"),
                            ({"batch": 0}, "batch=0 is invalid: it must be an integer >= 1"),
                            ({"save_dir": tmp_path / "file"}, "is a file, not a directory")):
        with pytest.raises(ValueError, match=message):
            evaluate_coco(weights, shapes.source, **{"imgsz": 128, "save_dir": tmp_path / "eval", **kwargs})
