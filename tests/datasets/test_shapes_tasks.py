"""cawb/datasets/shapes_tasks.py: the offline data of segmentation, pose, OBB and classification, read by
ultralytics' own dataset classes."""

import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from cawb.datasets.resolve import resolve_dataset_yaml
from cawb.datasets.shapes import CLASS_NAMES
from cawb.datasets.shapes_tasks import FLIP_IDX, KPT_SHAPE, generate_task_shapes, task_yaml_name
from cawb.utils.errors import InputError
from cawb.utils.resources import bundled_data

SMALL = {"train_images": 12, "val_images": 6, "imgsz": 96}
OBJECT_TASKS = ("segment", "pose", "obb")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """Each task's dataset root, generated once with the same arguments."""
    base = tmp_path_factory.mktemp("tasks")
    return {task: generate_task_shapes(base / task, task=task, **SMALL).parent
            for task in (*OBJECT_TASKS, "classify")}


def _rows(path: Path) -> list[np.ndarray]:
    return [np.array(line.split(), dtype=float) for line in path.read_text().splitlines()]


def _pixels(values: np.ndarray, image: Path) -> np.ndarray:
    """Normalised x y pairs as pixel-edge coordinates of ``image``."""
    h, w = cv2.imread(str(image)).shape[:2]
    return values.reshape(-1, 2) * (w, h)


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def test_same_arguments_give_byte_identical_files(generated, tmp_path):
    for task in ("segment", "classify"):
        again = generate_task_shapes(tmp_path / task, task=task, **SMALL).parent
        assert _files(again) == _files(generated[task])


def test_segment_pose_and_obb_annotate_the_same_images(generated):
    images = [{name: data for name, data in _files(generated[task]).items() if name.startswith("images/")}
              for task in OBJECT_TASKS]
    assert len(images[0]) == SMALL["train_images"] + SMALL["val_images"]
    assert images[0] == images[1] == images[2]


def test_each_polygon_covers_one_flat_coloured_shape(generated):
    """Inside a label's polygon (shrunk by a pixel) the image is one colour plus the drawing's noise (std 6): a
    polygon off its shape would take in background."""
    checked = 0
    for label in sorted((generated["segment"] / "labels" / "train").glob("*.txt")):
        image_path = generated["segment"] / "images" / "train" / f"{label.stem}.png"
        image = cv2.imread(str(image_path)).astype(float)
        for row in _rows(label):
            mask = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(_pixels(row[1:], image_path) - 0.5).astype(np.int32)], 255)
            inside = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
            if inside.sum() >= 20:
                assert image[inside].std(axis=0).max() < 12, (label.name, row[0])
                checked += 1
    assert checked >= 10


def test_pose_keypoints_are_the_extreme_points_and_centre_of_the_polygon(generated):
    """Each keypoint is the polygon's extreme point in its direction (vertices within half a pixel of it averaged,
    as a level side's ends are), or its vertices' mean; the box is the polygon's upright box."""
    for label in sorted((generated["pose"] / "labels" / "train").glob("*.txt")):
        image = generated["pose"] / "images" / "train" / f"{label.stem}.png"
        polygons = _rows(generated["segment"] / "labels" / "train" / label.name)
        poses = _rows(label)
        assert len(poses) == len(polygons)
        for pose, polygon in zip(poses, polygons):
            assert pose[0] == polygon[0] and pose.size == 5 + KPT_SHAPE[0] * KPT_SHAPE[1]
            points = _pixels(polygon[1:], image)
            top, right, bottom, left, centre = _pixels(pose[5:], image)
            rounding = 1e-3  # px: the labels' 6 decimals
            assert 0 <= top[1] - points[:, 1].min() <= 0.5 + rounding
            assert 0 <= points[:, 0].max() - right[0] <= 0.5 + rounding
            assert 0 <= points[:, 1].max() - bottom[1] <= 0.5 + rounding
            assert 0 <= left[0] - points[:, 0].min() <= 0.5 + rounding
            assert centre == pytest.approx(points.mean(axis=0), abs=rounding)
            box = _pixels(np.concatenate([pose[1:3] - pose[3:5] / 2, pose[1:3] + pose[3:5] / 2]), image)
            assert box == pytest.approx(np.stack([points.min(axis=0), points.max(axis=0)]), abs=rounding)


def test_oriented_boxes_are_rectangles_around_their_shapes(generated):
    for label in sorted((generated["obb"] / "labels" / "train").glob("*.txt")):
        image = generated["obb"] / "images" / "train" / f"{label.stem}.png"
        polygons = _rows(generated["segment"] / "labels" / "train" / label.name)
        for box_row, polygon_row in zip(_rows(label), polygons):
            corners = _pixels(box_row[1:], image)
            sides = [corners[(i + 1) % 4] - corners[i] for i in range(4)]
            for i in range(4):
                assert abs(np.dot(sides[i], sides[(i + 1) % 4])) < 1e-2 * np.linalg.norm(sides[i]) ** 2
            # every vertex of the shape lies inside the box (0.01 px for the labels' rounding)
            turn = np.sign(_cross(sides[0], sides[1]))
            for point in _pixels(polygon_row[1:], image):
                for i in range(4):
                    assert turn * _cross(sides[i], point - corners[i]) / np.linalg.norm(sides[i]) >= -1e-2


def test_classification_layout_is_what_ultralytics_reads(generated):
    from ultralytics.data.utils import check_cls_dataset

    root = generated["classify"]
    data = check_cls_dataset(str(root))
    assert data["names"] == dict(enumerate(CLASS_NAMES)) and data["nc"] == 3
    for split, n in (("train", SMALL["train_images"]), ("val", SMALL["val_images"])):
        images = sorted((root / split).rglob("*.png"))
        assert len(images) == n
        assert {image.parent.name for image in images} <= set(CLASS_NAMES)
        assert all(cv2.imread(str(image)).shape[:2] == (SMALL["imgsz"],) * 2 for image in images)


@pytest.mark.parametrize("task", OBJECT_TASKS)
def test_ultralytics_reads_the_labels_of_its_task(generated, task):
    """ultralytics' own dataset of the task loads every label: a polygon per box for segmentation (the check that
    failed on detection labels), the data's keypoints for pose, 4 corners for OBB."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    root = generated[task]
    data = check_det_dataset(str(root / task_yaml_name(task)))
    dataset = build_yolo_dataset(get_cfg(overrides={"task": task, "imgsz": SMALL["imgsz"]}), data["train"], 4, data,
                                 mode="val")
    labels = dataset.get_labels()
    written = sum(len(_rows(p)) for p in (root / "labels" / "train").glob("*.txt"))
    assert sum(len(label["cls"]) for label in labels) == written > 0
    if task == "segment":
        assert all(len(label["segments"]) == len(label["cls"]) for label in labels)
    if task == "pose":
        assert data["kpt_shape"] == list(KPT_SHAPE) and data["flip_idx"] == list(FLIP_IDX)
        keypoints = [label["keypoints"] for label in labels if len(label["cls"])]
        assert all(k.shape[1] == KPT_SHAPE[0] for k in keypoints)
        assert all((k[..., 2] == 1).all() for k in keypoints)  # the visibility ultralytics adds: all seen


def test_bundled_yamls_generate_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, task in (("shapes-seg", "segment"), ("shapes-pose", "pose"), ("shapes-obb", "obb"),
                       ("shapes-cls", "classify")):
        bundled = yaml.safe_load(bundled_data(f"{name}.yaml").read_text())
        assert bundled["generator"]["task"] == task
        dataset = resolve_dataset_yaml(bundled_data(f"{name}.yaml"))
        assert dataset.root == tmp_path / "datasets" / name
        generated = yaml.safe_load((dataset.root / task_yaml_name(task)).read_text())
        assert {key: generated[key] for key in generated if key not in ("train", "val")} == {
            key: bundled[key] for key in ("names", "kpt_shape", "flip_idx") if key in bundled}
        images = sorted(p for split in dataset.val for p in split.rglob("*.png"))
        assert len(images) == bundled["generator"]["val_images"]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(InputError, match="task='detect' must be one of segment, pose, obb, classify"):
        generate_task_shapes(tmp_path / "x", task="detect")
    with pytest.raises(InputError, match="imgsz=16 must be an integer >= 32"):
        generate_task_shapes(tmp_path / "x", task="pose", imgsz=16)
    assert not (tmp_path / "x").exists()
