"""cawb/training/tasks.py and the trainer of each task: what a model and a dataset are for, the one-line refusal of
a model and a dataset of different tasks, and the trainer, data and metrics each task gets (nothing trained here;
tests/training/test_tasks_training.py trains)."""

import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

import shutil
from pathlib import Path

import pytest
import yaml

from cawb.training.config import plan_run
from cawb.training.tasks import (
    TASKS,
    check_task_fits_data,
    dataset_tasks,
    demo_data,
    fitness,
    metric_values,
    model_task,
    preset_data_for_model,
)
from cawb.utils.errors import InputError
from cawb.utils.resources import bundled_data

MODELS = {"detect": "yolo11n.yaml", "segment": "yolo11n-seg.yaml", "pose": "yolo11n-pose.yaml",
          "obb": "yolo11n-obb.yaml", "classify": "yolo11n-cls.yaml"}
DEMO_NAMES = {"detect": "shapes", "segment": "shapes-seg", "pose": "shapes-pose", "obb": "shapes-obb",
              "classify": "shapes-cls"}


@pytest.mark.parametrize("task", TASKS)
def test_the_models_head_tells_its_task(task):
    assert model_task(MODELS[task]) == task
    assert model_task(MODELS[task].replace("yolo11n", "yolo26n")) == task  # YOLO26 names too


def test_yolov5_models_are_detectors_and_a_yaml_path_is_read(tmp_path):
    from ultralytics.nn.tasks import yaml_model_load

    assert model_task("yolov5s-v5.0.yaml") == "detect" and model_task("yolov5n.yaml") == "detect"
    copy = tmp_path / "mine.yaml"  # a name that says nothing: the head decides
    copy.write_text(yaml.safe_dump({k: v for k, v in yaml_model_load("yolo11n-pose.yaml").items()
                                    if k in ("nc", "kpt_shape", "scales", "backbone", "head")}))
    assert model_task(copy) == "pose"


@pytest.fixture(scope="module")
def pose_checkpoint(tmp_path_factory) -> Path:
    """An untrained yolo11n-pose saved as ultralytics saves a model."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("weights") / "pose.pt"
    YOLO("yolo11n-pose.yaml").save(path)
    return path


def test_a_checkpoint_is_of_the_task_it_was_made_for(pose_checkpoint):
    assert model_task(pose_checkpoint, "--weights") == "pose"


def test_tasks_cawb_does_not_train_are_refused_in_one_line():
    with pytest.raises(InputError, match=r"^--cfg yolo26n-sem.yaml is a semantic model: cawb trains detect, segment, "
                                         r"pose, obb, classify models$"):
        model_task("yolo26n-sem.yaml")


@pytest.mark.parametrize("task", TASKS)
def test_each_bundled_demo_is_its_tasks_data_before_it_is_generated(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = demo_data(task)
    assert data == bundled_data(f"{DEMO_NAMES[task]}.yaml")
    found = dataset_tasks(data)
    assert task in found.tasks and (found.tasks == {task, "detect"} if task == "segment" else found.tasks == {task})
    assert not (tmp_path / "datasets").exists()  # read from the yaml: nothing generated


def _labelled(tmp_path: Path, rows: list[str], **keys) -> Path:
    """A dataset yaml whose two train images have these label rows (one row per image, the rest empty)."""
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
    for i, row in enumerate(rows):
        (tmp_path / "images" / "train" / f"{i}.png").write_bytes(b"")
        (tmp_path / "labels" / "train" / f"{i}.txt").write_text(row + "\n")
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"train": "images/train", "val": "images/val", "names": ["a", "b"], **keys}))
    return path


@pytest.mark.parametrize("rows, tasks", [
    (["0 0.5 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1"], {"detect"}),
    (["0 0.1 0.1 0.4 0.1 0.3 0.5", "1 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4 0.2 0.2"], {"segment", "detect"}),
    (["0 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4", "1 0.2 0.2 0.3 0.2 0.3 0.3 0.2 0.3"], {"obb", "segment", "detect"}),
    (["0 0.5 0.5 0.2 0.2", "1 0.1 0.1 0.4 0.1 0.3 0.5"], {"detect"}),  # boxes beside polygons: segmentation refuses
    ([], None),  # no labels yet: its own check speaks later
])
def test_the_label_rows_tell_what_a_dataset_can_train(tmp_path, rows, tasks):
    found = dataset_tasks(_labelled(tmp_path, rows))
    assert found.tasks == (frozenset(tasks) if tasks else None)


def test_kpt_shape_is_pose_and_a_folder_of_class_folders_is_classification(tmp_path):
    assert dataset_tasks(_labelled(tmp_path / "p", ["0 0.5 0.5 0.2 0.2 0.5 0.4"], kpt_shape=[1, 2])).tasks == {"pose"}
    (tmp_path / "c" / "train" / "cat").mkdir(parents=True)
    assert dataset_tasks(tmp_path / "c").tasks == {"classify"}
    assert dataset_tasks(tmp_path / "p").tasks is None  # another folder: its own check says what it is not


def test_a_detector_trains_on_polygons_but_a_segmenter_not_on_boxes(tmp_path):
    polygons = _labelled(tmp_path / "s", ["0 0.1 0.1 0.4 0.1 0.3 0.5"])
    boxes = _labelled(tmp_path / "b", ["0 0.5 0.5 0.2 0.2"])
    check_task_fits_data("detect", "--cfg yolo11n.yaml", polygons)
    with pytest.raises(InputError) as error:
        check_task_fits_data("segment", "--cfg yolo11n-seg.yaml", boxes, "--data b/data.yaml")
    assert str(error.value) == (
        "--cfg yolo11n-seg.yaml is a segmentation model, but --data b/data.yaml holds boxes (5 columns per label row): "
        "give a segmentation dataset (label rows class x1 y1 x2 y2 ... (polygons); offline: shapes-seg) or a model "
        "of the dataset's task")


@pytest.mark.parametrize("task, data", [("segment", "shapes"), ("pose", "shapes-seg"), ("obb", "shapes-seg"),
                                        ("classify", "shapes-obb"), ("detect", "shapes-pose"),
                                        ("detect", "shapes-cls")])
def test_a_model_and_a_dataset_of_different_tasks_are_refused_before_anything_is_made(task, data, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as error:
        plan_run(cfg=MODELS[task], data=data, project=str(tmp_path / "runs"))
    message = str(error.value)
    assert message.startswith(f"--cfg {MODELS[task]} is a") and f"--data {data} holds" in message
    assert f"offline: {DEMO_NAMES[task]}" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no data generated, no run directory


def test_a_pose_checkpoint_given_as_weights_is_refused_with_segmentation_data(pose_checkpoint, tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(pose_checkpoint, tmp_path / "pose.pt")
    with pytest.raises(InputError, match=r"^--weights pose.pt is a pose model, but --data shapes-seg holds"):
        plan_run(weights="pose.pt", data="shapes-seg")


@pytest.mark.parametrize("task", TASKS)
def test_without_data_a_model_trains_on_its_tasks_offline_data(task, tmp_path):
    config = plan_run(cfg=MODELS[task], project=str(tmp_path), resolve_dataset=False)
    assert config.task == task
    assert Path(config.overrides["data"]) == bundled_data(f"{DEMO_NAMES[task]}.yaml")
    assert config.overrides["name"] == DEMO_NAMES[task]  # runs/train/shapes-seg, ...


def test_a_classification_folder_is_the_data_ultralytics_takes(tmp_path):
    from cawb.datasets.shapes_tasks import generate_task_shapes

    root = generate_task_shapes(tmp_path / "cls", task="classify", train_images=3, val_images=3, imgsz=32).parent
    shutil.copytree(root, tmp_path / "mine")  # a user's folder: no yaml
    config = plan_run(cfg="yolo11n-cls.yaml", data=str(tmp_path / "mine"), project=str(tmp_path / "runs"))
    assert config.overrides["data"] == str(tmp_path / "mine")
    with pytest.raises(InputError, match="holds a classification folder"):
        plan_run(cfg="yolo11n-seg.yaml", data=str(tmp_path / "mine"), project=str(tmp_path / "runs"))
    with pytest.raises(InputError, match=r"^--data .*/mine/train: not a classification folder: it must hold "
                                         r"train/<class>/"):
        plan_run(cfg="yolo11n-cls.yaml", data=str(tmp_path / "mine" / "train"), project=str(tmp_path / "runs"))


def test_every_task_has_cawbs_trainer_in_cawb_yolo():
    from ultralytics.models import yolo

    from cawb import YOLO
    from cawb.training.cawb_mixin import CawbMixin
    from cawb.training.durable import DurableCheckpointsMixin
    from cawb.training.exact_resume import ExactResumeMixin
    from cawb.training.lr_figure import LrFigureMixin
    from cawb.training.offline import OfflineMixin
    from cawb.training.trainer import TASK_TRAINERS, trainer_for_task

    stock = {"detect": yolo.detect.DetectionTrainer, "segment": yolo.segment.SegmentationTrainer,
             "pose": yolo.pose.PoseTrainer, "obb": yolo.obb.OBBTrainer, "classify": yolo.classify.ClassificationTrainer}
    assert set(TASK_TRAINERS) == set(TASKS)
    yolo = YOLO(MODELS["pose"])
    assert yolo.task == "pose"
    for task in TASKS:
        trainer = trainer_for_task(task)
        assert yolo.task_map[task]["trainer"] is trainer
        for part in (CawbMixin, DurableCheckpointsMixin, ExactResumeMixin, LrFigureMixin, OfflineMixin, stock[task]):
            assert issubclass(trainer, part), (task, part)


def test_the_metrics_of_each_task_and_its_fitness():
    row = {"metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": 0.3, "metrics/mAP50(M)": 0.4, "metrics/mAP50-95(M)": 0.2,
           "metrics/accuracy_top1": 0.7, "metrics/accuracy_top5": 1.0}
    assert metric_values("detect", row) == {"map50": 0.5, "map50_95": 0.3}
    assert metric_values("segment", row) == {"map50": 0.4, "map50_95": 0.2}  # the mask's
    assert metric_values("classify", row) == {"top1": 0.7, "top5": 1.0}
    assert metric_values("pose", row) == {"map50": None, "map50_95": None}
    # ultralytics' fitness: detection mAP50-95, segmentation box + mask mAP50-95, classification (top1 + top5) / 2
    assert fitness("detect", row) == 0.3 and fitness("segment", row) == pytest.approx(0.5)
    assert fitness("classify", row) == pytest.approx(0.85)


def test_a_presets_detection_demo_follows_the_model_to_its_tasks_data():
    shapes = demo_data("detect")
    assert preset_data_for_model(shapes, "yolo11n-seg.yaml") == demo_data("segment")
    assert preset_data_for_model(shapes, "yolov5n.yaml") == shapes
    assert preset_data_for_model(shapes, "no-such-model.yaml") == shapes  # its own check speaks later
    assert preset_data_for_model("data/my.yaml", "yolo11n-seg.yaml") == "data/my.yaml"  # given data stays


def test_the_command_line_refuses_the_pair_in_one_line(tmp_path, monkeypatch, capsys):
    from cawb.cli.train import main

    monkeypatch.chdir(tmp_path)
    assert main(["--cfg", "yolo11n-pose.yaml", "--data", "shapes"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --cfg yolo11n-pose.yaml is a pose model, but --data shapes holds the generated "
                          "detection data") and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_another_tasks_run_keeps_the_warmup_floor_and_leaves_detections_recipe_out(tmp_path):
    config = plan_run(cfg=MODELS["segment"], project=str(tmp_path), resolve_dataset=False, warmup_min_iters=50,
                      max_grad_norm=0.0, autoanchor=False)
    assert config.overrides["warmup_min_iters"] == 50  # its trainer applies it (WarmupFloorMixin)
    assert "max_grad_norm" not in config.overrides and "autoanchor" not in config.overrides  # detection's only
    detector = plan_run(cfg=MODELS["detect"], project=str(tmp_path), resolve_dataset=False, max_grad_norm=0.0)
    assert detector.overrides["max_grad_norm"] == 0.0
