"""compare.py and tune.py with a model of another task than detection: the task's data by default, the task's
numbers in the report (from ultralytics' validator, said in the table), the task's metrics for the tuner."""

import os

os.environ["YOLO_OFFLINE"] = "1"  # before anything imports ultralytics

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from cawb.experiment.compare import plan_comparison, resolve_settings
from cawb.experiment.compare.model import Arm, Run, RunStatus
from cawb.experiment.compare.report import report_paths, write_report
from cawb.experiment.compare.rundir import best_epoch, read_epoch_metrics, read_evaluation
from cawb.experiment.tune import plan_tune
from cawb.experiment.tune_settings import resolve_settings as tune_settings
from cawb.training.tasks import demo_data
from cawb.utils.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _tiny_task_data(root: Path, task: str) -> Path:
    """A 6-train / 3-val image dataset of ``task`` at 64 px, generated on first use: its yaml."""
    folders = ("train", "val") if task == "classify" else ("images/train", "images/val")
    path = root / f"{task}.yaml"
    path.write_text(yaml.safe_dump({
        "path": str(root / task), "train": folders[0], "val": folders[1], "names": ["circle", "rectangle", "triangle"],
        "generator": {"name": "shapes-tasks", "task": task, "train_images": 6, "val_images": 3, "imgsz": 64}}))
    return path


def test_a_preset_trains_a_model_of_another_task_on_that_tasks_offline_data():
    assert resolve_settings(preset="cpu", cfg="yolo11n-seg.yaml").data == demo_data("segment")
    assert resolve_settings(preset="cpu").data == demo_data("detect")
    assert tune_settings(preset="cpu", trials=2, cfg="yolo11n-pose.yaml").data == str(demo_data("pose"))


def test_a_segmentation_comparison_needs_no_coco_ground_truth_and_plans_the_tasks_runs(tmp_path):
    data = _tiny_task_data(tmp_path, "segment")  # no val_json: pycocotools does not score masks here
    plan = plan_comparison(resolve_settings(preset="cpu", data=str(data), cfg="yolo11n-seg.yaml",
                                            project=str(tmp_path / "p"), seeds=[0], epochs=2, imgsz=64, batch=8))
    assert {arm.config.task for arm in plan.arms} == {"segment"}
    assert all(arm.config.overrides["data"] == str(plan.dataset.yaml) for arm in plan.arms)
    assert plan.train_images == 6 and plan.val_images == 3


def test_a_classification_comparison_trains_on_the_folder(tmp_path):
    data = _tiny_task_data(tmp_path, "classify")
    plan = plan_comparison(resolve_settings(preset="cpu", data=str(data), cfg="yolo11n-cls.yaml",
                                            project=str(tmp_path / "p"), seeds=[0], epochs=2, imgsz=64, batch=8))
    assert all(arm.config.overrides["data"] == str(tmp_path / "classify") for arm in plan.arms)


def test_a_detection_comparison_still_needs_its_ground_truth(tmp_path):
    data = _tiny_task_data(tmp_path, "segment")
    with pytest.raises(InputError, match="val_json and category_ids are required"):
        plan_comparison(resolve_settings(preset="cpu", data=str(data), cfg="yolov5n.yaml",
                                         project=str(tmp_path / "p"), seeds=[0], epochs=2, imgsz=64, batch=8))


def _arm(label: str, cawb: bool, task: str) -> Arm:
    from cawb.training.config import RunConfig
    from cawb.training.hyp import read_hyp_file, schedule_from_hyp

    hyp = read_hyp_file(REPO_ROOT / "hyp" / f"hyp.shapes-{'cawb' if cawb else 'cos'}.yaml")
    config = RunConfig(model_source="yolo11n-cls.yaml", weights=None, overrides=dict(hyp.settings), task=task,
                       schedule=schedule_from_hyp(hyp.settings))
    return Arm(label=label, hyp=hyp, config=config, restarts_hyp=(4, 11) if cawb else None,
               restarts_used=(4, 11) if cawb else None)


def _run(arm: Arm, seed: int, top1: float, tmp_path: Path) -> Run:
    numbers = {"weights": "w.pt", "ultralytics_top1": top1, "ultralytics_top5": 1.0}
    evaluation = {"task": "classify", "source": "ultralytics", "final": numbers, "best": numbers,
                  "epochs_trained": 2, "best_epoch": 2}
    curve = {"epoch": [1, 2], "top1": [0.4, top1], "top5": [1.0, 1.0], "fitness": [0.7, (top1 + 1) / 2]}
    return Run(arm=arm, seed=seed, run_dir=tmp_path / f"{arm.label}-{seed}", status=RunStatus.FINISHED,
               evaluation=evaluation, curve=curve)


def test_a_classification_report_shows_top1_and_top5_from_ultralytics_validator(tmp_path):
    arms = [_arm("cos-arm", False, "classify"), _arm("cawb-arm", True, "classify")]
    runs = [_run(arms[0], 0, 0.80, tmp_path), _run(arms[0], 1, 0.84, tmp_path),
            _run(arms[1], 0, 0.82, tmp_path), _run(arms[1], 1, 0.87, tmp_path)]
    settings = {"data": "data/shapes-cls.yaml", "cfg": "yolo11n-cls.yaml", "epochs": 20, "imgsz": 128, "batch": 16,
                "seeds": [0, 1], "train_images": 256, "val_images": 64, "batches_per_epoch": 16,
                "effect": {"map50": 0.02, "map50_95": 0.01}}  # --effect's two numbers: top-1's and top-5's
    paths = report_paths(tmp_path / "p", exist_ok=False)
    summary = write_report(arms, runs, settings, paths)
    assert summary["task"] == "classify" and summary["official_source"] == "ultralytics"
    assert summary["metrics"] == {"top1": "top-1 accuracy", "top5": "top-5 accuracy"}
    assert summary["power"]["effect"] == {"top1": 0.02, "top5": 0.01}
    cos = summary["arms"]["cos-arm"]["final"]["top1"]["ultralytics"]
    assert cos["n"] == 2 and cos["mean"] == pytest.approx(0.82)
    assert summary["differences"][0]["final"]["top1"]["ultralytics"]["mean"] == pytest.approx(0.025)
    assert summary["arms"]["cos-arm"]["article"] is None and summary["differences"][0]["article"] is None
    table = paths.table_md.read_text()
    assert table.startswith("# cos-arm vs cawb-arm: top-1 accuracy and top-5 accuracy on the val split")
    assert "ultralytics' classification validator" in table and "pycocotools does not apply" in table
    assert "| final top-1 accuracy |" in table and "| cos-arm | cos | 2 | 0.820 ± 0.028 |" in table
    assert "article" not in table.lower() and "anchor-based" not in table  # the article's numbers are detection's
    rows = list(csv.DictReader(io.StringIO(paths.table_csv.read_text())))
    assert float(rows[0]["final_top1_mean"]) == pytest.approx(0.82) and "article_top1" not in rows[0]
    assert json.loads(paths.summary_json.read_text()) == summary


def test_a_tasks_evaluation_record_and_curve_are_read_back(tmp_path):
    record = {"arm": "a", "seed": 0, "task": "segment", "source": "ultralytics",
              "final": {"weights": "w.pt", "ultralytics_map50": 0.3, "ultralytics_map50_95": 0.1},
              "best": {"weights": "b.pt", "ultralytics_map50": 0.3, "ultralytics_map50_95": 0.1}}
    (tmp_path / "eval.json").write_text(json.dumps(record))
    assert read_evaluation(tmp_path) == record
    (tmp_path / "eval.json").write_text(json.dumps({**record, "final": {"weights": "w.pt"}}))
    notes = []
    assert read_evaluation(tmp_path, notes) is None and "final/best records are missing" in notes[0]
    results = tmp_path / "results.csv"
    columns = "epoch,metrics/mAP50(B),metrics/mAP50-95(B),metrics/mAP50(M),metrics/mAP50-95(M)"
    results.write_text(f"{columns}\n1,0.1,0.05,0.2,0.10\n2,0.2,0.20,0.2,0.02\n3,0.1,0.10,0.3,0.12\n")
    curve = read_epoch_metrics(results, "segment")
    assert curve["map50"] == [0.2, 0.2, 0.3]  # the mask's
    assert curve["fitness"] == pytest.approx([0.15, 0.22, 0.22])  # box + mask mAP50-95, as ultralytics picks best.pt
    assert best_epoch(curve) == 3  # a tie: the later epoch (ultralytics rewrites best.pt)


def test_the_tuner_refuses_a_metric_the_models_task_has_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _tiny_task_data(tmp_path, "classify")
    with pytest.raises(InputError, match=r"^--metric map50 is not a number of classification: choose one of "
                                         r"fitness, top1, top5$"):
        plan_tune(tune_settings(preset="cpu", trials=1, data=str(data), cfg="yolo11n-cls.yaml", epochs=2, imgsz=64,
                                metric="map50", project=str(tmp_path / "t")))
    plan = plan_tune(tune_settings(preset="cpu", trials=1, data=str(data), cfg="yolo11n-cls.yaml", epochs=4,
                                   imgsz=64, metric="top1", project=str(tmp_path / "t")))
    assert plan.base_config.task == "classify"


def test_the_coco_evaluation_refuses_a_model_of_another_task_in_one_line(tmp_path, monkeypatch):
    from ultralytics import YOLO

    from cawb.experiment.evaluate import evaluate_coco

    monkeypatch.chdir(tmp_path)
    YOLO("yolo11n-seg.yaml").save(tmp_path / "seg.pt")
    with pytest.raises(InputError, match=r"^weights .*seg.pt: a segment model; the COCO evaluation scores detection "
                                         r"boxes"):
        evaluate_coco(tmp_path / "seg.pt", demo_data("detect"), imgsz=64, save_dir=tmp_path / "eval")
    assert not (tmp_path / "datasets").exists()  # refused before the data was generated
