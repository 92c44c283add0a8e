import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

import json
from pathlib import Path

import cv2
import pytest
import yaml
from pycocotools.coco import COCO

from cawb.datasets import shapes
from cawb.datasets.shapes import CATEGORY_IDS, CLASS_NAMES, generate_shapes_dataset

SMALL = {"train_images": 24, "val_images": 12, "imgsz": 96}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_shapes_dataset(tmp_path_factory.mktemp("shapes") / "ds", **SMALL)


def test_same_arguments_give_byte_identical_files(small, tmp_path):
    again = generate_shapes_dataset(tmp_path / "again", **SMALL)
    first, second = _files(small.parent), _files(again.parent)
    assert sorted(first) == sorted(second)
    assert len([f for f in first if f.endswith(".png")]) == SMALL["train_images"] + SMALL["val_images"]
    assert first == second


def test_seed_changes_images_and_splits_are_independent(small, tmp_path):
    other_seed = _files(generate_shapes_dataset(tmp_path / "s1", **{**SMALL, "seed": 1}).parent)
    assert other_seed["images/val/val_00000.png"] != _files(small.parent)["images/val/val_00000.png"]
    # Each image has its own seed: a bigger train split leaves the val split unchanged.
    more_train = _files(generate_shapes_dataset(tmp_path / "more", **{**SMALL, "train_images": 30}).parent)
    base = _files(small.parent)
    assert {k: v for k, v in more_train.items() if k.startswith("images/val")} == {
        k: v for k, v in base.items() if k.startswith("images/val")
    }


@pytest.mark.parametrize("split", ["train", "val"])
def test_yolo_labels_agree_with_coco_json(small, split):
    root = small.parent
    gt = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
    assert [c["id"] for c in gt["categories"]] == list(CATEGORY_IDS)
    by_image = {im["id"]: [] for im in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    images = sorted((root / "images" / split).glob("*.png"))
    assert [im["file_name"] for im in gt["images"]] == [p.name for p in images]
    for im in gt["images"]:
        h, w = cv2.imread(str(root / "images" / split / im["file_name"])).shape[:2]
        assert (im["width"], im["height"]) == (w, h)
        assert max(w, h) == SMALL["imgsz"]
        label_file = root / "labels" / split / (Path(im["file_name"]).stem + ".txt")
        rows = [line.split() for line in label_file.read_text().splitlines()]
        anns = by_image[im["id"]]
        assert len(rows) == len(anns)
        for row, ann in zip(rows, anns):
            cls, cx, cy, bw, bh = int(row[0]), *map(float, row[1:])
            assert CATEGORY_IDS[cls] == ann["category_id"]
            x, y, aw, ah = ann["bbox"]
            assert (cx - bw / 2) * w == pytest.approx(x, abs=1e-3)
            assert (cy - bh / 2) * h == pytest.approx(y, abs=1e-3)
            assert (bw * w, bh * h) == pytest.approx((aw, ah), abs=1e-3)
            assert 0 <= x and 0 <= y and x + aw <= w and y + ah <= h
            assert ann["area"] == aw * ah and ann["iscrowd"] == 0


def test_dataset_has_empty_images_crowded_images_and_every_class(small):
    root = small.parent
    counts = [len(p.read_text().splitlines()) for p in sorted((root / "labels" / "train").glob("*.txt"))]
    assert 0 in counts and max(counts) >= 3
    classes = {line.split()[0] for p in (root / "labels").rglob("*.txt") for line in p.read_text().splitlines()}
    assert classes == {str(i) for i in range(len(CLASS_NAMES))}


def test_objects_do_not_overlap(small):
    gt = json.loads((small.parent / "annotations" / "instances_train.json").read_text())
    by_image = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["bbox"])
    for boxes in by_image.values():
        for i, (x, y, w, h) in enumerate(boxes):
            for x2, y2, w2, h2 in boxes[i + 1 :]:
                assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y


def test_yaml_is_machine_independent_and_names_the_coco_keys(small):
    data = yaml.safe_load(small.read_text())
    assert "path" not in data and "download" not in data
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert data["names"] == dict(enumerate(CLASS_NAMES))
    assert data["category_ids"] == list(CATEGORY_IDS)
    for key in "val_json", "train_json":
        assert (small.parent / data[key]).is_file()


def test_ultralytics_accepts_the_yaml(small):
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(small))
    assert data["nc"] == len(CLASS_NAMES)
    assert Path(data["val"]) == small.parent / "images" / "val"
    assert Path(data["train"]) == small.parent / "images" / "train"


def test_pycocotools_loads_the_ground_truth(small):
    coco = COCO(str(small.parent / "annotations" / "instances_val.json"))
    assert coco.getCatIds() == list(CATEGORY_IDS)
    assert len(coco.getImgIds()) == SMALL["val_images"]
    assert len(coco.getAnnIds()) == sum(
        len(p.read_text().splitlines()) for p in (small.parent / "labels" / "val").glob("*.txt")
    )


def test_existing_dataset_is_reused_only_for_the_same_arguments(small, tmp_path):
    png = small.parent / "images" / "train" / "train_00000.png"
    before = png.stat().st_mtime_ns
    assert generate_shapes_dataset(small.parent, **SMALL) == small
    assert png.stat().st_mtime_ns == before
    with pytest.raises(FileExistsError, match="delete"):
        generate_shapes_dataset(small.parent, **{**SMALL, "seed": 5})
    (tmp_path / "foreign").mkdir()
    with pytest.raises(FileExistsError, match="not generated by cawb.datasets.shapes"):
        generate_shapes_dataset(tmp_path / "foreign", **SMALL)


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []
    draw = shapes._draw_image

    def failing_draw(rng, params):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-generation
        return draw(rng, params)

    monkeypatch.setattr(shapes, "_draw_image", failing_draw)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes_dataset(tmp_path / "ds", **SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad", [{"train_images": 0}, {"val_images": 1.5}, {"imgsz": 16}, {"empty_fraction": 1.0}, {"seed": -1}]
)
def test_bad_arguments_are_rejected_naming_the_key(tmp_path, bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key):
        generate_shapes_dataset(tmp_path / "ds", **{**SMALL, **bad})
    assert not (tmp_path / "ds").exists()
