"""Each ultralytics task trained with CAWB from its offline shapes data, on the CPU: the task's trainer, model, head
and loss are the ones the run uses (a pose model is never trained as a detector), the learning rate follows the
CAWB schedule, and the task's metric ends above chance.

The runs are as short as learning allows (64 px; a few hundred images for classification, which needs many
distinct images, 64 for the others): the longer runs of the demo are measured in docs/RESULTS.md.
"""

import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

import csv
from pathlib import Path

import pytest
import yaml

from cawb.datasets.shapes_tasks import FLIP_IDX, KPT_SHAPE
from cawb.schedule import CawbSchedule
from cawb.training.config import plan_run
from cawb.training.train import train
from cawb.training.trainer import TASK_TRAINERS

pytestmark = pytest.mark.slow  # every test trains

NAMES = {0: "circle", 1: "rectangle", 2: "triangle"}
MODELS = {"segment": "yolo11n-seg.yaml", "pose": "yolo11n-pose.yaml", "obb": "yolo11n-obb.yaml",
          "classify": "yolo11n-cls.yaml"}
# A detector trained from scratch starts finding the shapes after about 120 steps: 20 epochs of 8 batches (0.13 to
# 0.27 mAP50 measured), AdamW and no mosaic (which would shrink 64 px images further) to get there sooner; cycles that
# reach their floor (epoch_scale 1), so each restart shows. Classification learns from many distinct images.
CAWB = dict(cawb_step_scale=0.7, cawb_epoch_scale=1.0, cawb_lf_min=0.35)
OBJECT_RUN = dict(epochs=20, batch=8, optimizer="AdamW", lr0=0.01, mosaic=0.0, cawb_steps=[6, 13], **CAWB)
CLASSIFY_RUN = dict(epochs=4, batch=16, optimizer="AdamW", lr0=0.001, cawb_steps=[2], **CAWB)
IMAGES = {"classify": (512, 128)}  # train, val; the others: 64, 32


def _dataset(root: Path, task: str) -> Path:
    train_images, val_images = IMAGES.get(task, (64, 32))
    folders = ("train", "val") if task == "classify" else ("images/train", "images/val")
    data = {"path": str(root / task), "train": folders[0], "val": folders[1], "names": NAMES,
            "generator": {"name": "shapes-tasks", "task": task, "train_images": train_images,
                          "val_images": val_images, "imgsz": 64}}
    if task == "pose":
        data.update(kpt_shape=list(KPT_SHAPE), flip_idx=list(FLIP_IDX))
    path = root / f"{task}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One CAWB run per task, trained on first use: (its planned config, its result, the trainer that trained)."""
    root = tmp_path_factory.mktemp("tasks")
    done = {}

    def run(task):
        if task not in done:
            trainers = []
            config = plan_run(data=str(_dataset(root, task)), cfg=MODELS[task], hyp="shapes-cawb", imgsz=64,
                              device="cpu", workers=0, seed=0, project=str(root / "runs"), name=task, val=False,
                              plots=False, exact_resume=False, **(CLASSIFY_RUN if task == "classify" else OBJECT_RUN))
            result = train(config, callbacks={"on_train_end": trainers.append})
            done[task] = config, result, trainers[0]
        return done[task]

    return run


def _results(save_dir: Path) -> list[dict[str, float]]:
    with open(save_dir / "results.csv", newline="") as handle:
        return [{key.strip(): float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


@pytest.mark.parametrize("task, chance", [("segment", 0.0), ("pose", 0.0), ("obb", 0.0), ("classify", 1 / 3)])
def test_the_task_trains_with_cawb_and_its_metric_ends_above_chance(runs, task, chance):
    config, result, trainer = runs(task)
    assert type(trainer) is TASK_TRAINERS[task] and config.task == result.task == task
    # the CAWB schedule, after the warmup epoch: lr0 times the schedule, rising after each restart
    schedule = config.schedule
    assert isinstance(schedule, CawbSchedule) and trainer.lf is schedule
    assert list(schedule.restart_epochs) == config.overrides["cawb_steps"]
    rows = _results(result.save_dir)
    lr0 = config.overrides["lr0"]
    assert len(rows) == config.overrides["epochs"]
    for row in rows[1:]:
        assert row["lr/pg0"] == pytest.approx(lr0 * schedule(int(row["epoch"]) - 1), rel=1e-5)
    for restart in schedule.restart_epochs:
        assert rows[int(restart) + 1]["lr/pg0"] > rows[int(restart)]["lr/pg0"]
    # mAP 0 for an untrained detector (no box, or boxes anywhere), 1/3 for a classifier that guesses
    first = next(iter(result.task_metrics.values()))
    margin = 0.25 if task == "classify" else 0.05
    assert first > chance + margin, result.task_metrics


def test_a_pose_model_trains_as_a_pose_model_with_the_datas_keypoints(runs):
    from ultralytics.nn.modules.head import Pose
    from ultralytics.nn.tasks import PoseModel
    from ultralytics.utils.patches import torch_load
    from ultralytics.utils.torch_utils import unwrap_model

    _, result, trainer = runs("pose")
    model = unwrap_model(trainer.model)
    head = model.model[-1]
    assert isinstance(model, PoseModel) and isinstance(head, Pose)
    assert tuple(head.kpt_shape) == KPT_SHAPE and model.yaml["kpt_shape"] == list(KPT_SHAPE)  # not the yaml's 17
    assert "Pose" in type(model.criterion).__name__  # the keypoint loss, not the detection loss
    losses = [row["train/pose_loss"] for row in _results(result.save_dir)]
    assert losses[-1] < losses[0]  # the keypoint loss trained
    saved = torch_load(result.weights, map_location="cpu")["model"]
    assert isinstance(saved, PoseModel) and tuple(saved.model[-1].kpt_shape) == KPT_SHAPE
    assert set(result.metrics) >= {"metrics/mAP50(P)", "metrics/mAP50-95(P)"}


@pytest.mark.parametrize("task, model_class, loss_column", [("segment", "SegmentationModel", "train/seg_loss"),
                                                             ("obb", "OBBModel", "train/box_loss"),
                                                             ("classify", "ClassificationModel", "train/loss")])
def test_each_task_trains_its_own_model_and_loss(runs, task, model_class, loss_column):
    from ultralytics.nn import tasks
    from ultralytics.utils.torch_utils import unwrap_model

    _, result, trainer = runs(task)
    assert type(unwrap_model(trainer.model)) is getattr(tasks, model_class)
    losses = [row[loss_column] for row in _results(result.save_dir)]
    assert losses[-1] < losses[0]


def test_compare_evaluates_a_tasks_weights_with_its_validator_as_training_did(runs, tmp_path):
    from cawb.experiment.evaluate import evaluate_with_validator

    config, result, _ = runs("classify")
    values = evaluate_with_validator(result.weights, config.overrides["data"], "classify", imgsz=64,
                                     save_dir=tmp_path / "eval", batch=16)
    assert values == pytest.approx({"top1": result.metrics["metrics/accuracy_top1"],
                                    "top5": result.metrics["metrics/accuracy_top5"]})


def test_a_classification_comparison_runs_and_reports_top1_from_the_validator(tmp_path):
    """compare.py end to end with a classification model: each run is evaluated by ultralytics' classification
    validator, and the table reports top-1 and top-5 and says where they come from."""
    import json

    from cawb.experiment.compare import compare

    data = tmp_path / "cls.yaml"
    data.write_text(yaml.safe_dump({"path": str(tmp_path / "cls"), "train": "train", "val": "val", "names": NAMES,
                                    "generator": {"name": "shapes-tasks", "task": "classify", "train_images": 32,
                                                  "val_images": 16, "imgsz": 32}}))
    result = compare(preset="cpu", log=[].append, data=str(data), cfg="yolo11n-cls.yaml", project=str(tmp_path / "p"),
                     seeds=[0], epochs=2, imgsz=32, batch=16, overrides={"plots": False})
    runs = {run.arm.label: run for run in result.plan.runs}
    assert set(runs) == {"hyp.shapes-cos", "hyp.shapes-cawb"}
    for run in runs.values():
        record = json.loads((run.run_dir / "eval.json").read_text())
        assert record["task"] == "classify" and record["source"] == "ultralytics"
        assert 0 <= record["final"]["ultralytics_top1"] <= 1 and record["final"]["ultralytics_top5"] == 1.0
    summary = json.loads(result.plan.paths.summary_json.read_text())
    assert summary["task"] == "classify" and summary["official_source"] == "ultralytics"
    table = result.plan.paths.table_md.read_text()
    assert "top-1 accuracy" in table and "ultralytics' classification validator" in table
    assert result.plan.paths.map_png.is_file()
