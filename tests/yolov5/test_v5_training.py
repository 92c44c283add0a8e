"""YOLOv5 v5.0 models in cawb's trainer: tiny CPU runs of yolov5n-v5.0 at 64 px (16 images, 2 batches per epoch).

One CAWB run (interrupted after 2 epochs and resumed, against one uninterrupted) is shared by most tests: results.csv
names and values (the resumed run's equal to the uninterrupted run's), the lr ultralytics applied with v5.0's warmup floor, the recipe in the checkpoint, EMA, then
evaluation with pycocotools, predict and export of its best.pt.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file
from ultralytics.utils.patches import torch_load

from cawb import YOLO, CawbDetectionTrainer, CosineAnnealingWarmbootingLR
from cawb.training.hyp import schedule_from_hyp
from cawb.training.lr_curve import lr_curve
from cawb.training.train import TrainingInterrupted, train
from cawb.yolov5 import bundled_model_yaml
from cawb.yolov5.model import YOLOv5Model

pytestmark = pytest.mark.slow  # every test trains

REPO_ROOT = Path(__file__).resolve().parents[2]
V5_ANCHOR_ROWS = ("[10,13, 16,30, 33,23]", "[30,61, 62,45, 59,119]", "[116,90, 156,198, 373,326]")
LR_COLUMNS = ("lr/pg0", "lr/pg1", "lr/pg2")
LOSS_COLUMNS = ("train/box_loss", "train/obj_loss", "train/cls_loss")
CAWB = dict(cawb=True, cawb_steps=[2], cawb_step_scale=0.8, cawb_epoch_scale=1.5, cawb_lf_min=0.2)
# nbs 8 = the batch: one optimizer step per batch; warmup 1 epoch = 2 iterations, raised to 3 by the floor.
SETTINGS = dict(epochs=4, imgsz=64, batch=8, nbs=8, device="cpu", workers=0, lr0=0.01, warmup_epochs=1,
                warmup_min_iters=3, seed=0, val=False, plots=False, exist_ok=True, **CAWB)


def results(save_dir):
    lines = (Path(save_dir) / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    return header, [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]


def run(data, project, name, **extra):
    return train(data=str(data), cfg="yolov5n-v5.0.yaml", hyp=str(REPO_ROOT / "hyp/hyp.shapes-cawb.yaml"),
                 project=str(project), name=name, **{**SETTINGS, **extra})


@pytest.fixture(scope="module")
def uninterrupted(tiny_shapes, tmp_path_factory):
    ema = {}

    def record_ema(trainer):  # the final checkpoints drop the EMA's bookkeeping: look at the trainer's
        ema.update(updates=trainer.ema.updates, model=trainer.ema.ema)

    result = run(tiny_shapes, tmp_path_factory.mktemp("runs"), "whole", callbacks={"on_train_end": record_ema})
    result.ema = ema
    return result


@pytest.fixture(scope="module")
def resumed(tiny_shapes, tmp_path_factory):
    """The same run stopped (as by Ctrl-C) after its second epoch, then resumed from last.pt."""
    def stop_after_second_epoch(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    project = tmp_path_factory.mktemp("runs")
    with pytest.raises(TrainingInterrupted) as interrupted:
        run(tiny_shapes, project, "stopped", callbacks={"on_fit_epoch_end": stop_after_second_epoch})
    last = interrupted.value.last
    assert last == project / "stopped" / "weights" / "last.pt" and len(results(last.parents[1])[1]) == 2
    return train(resume=str(last))


@pytest.mark.compat
def test_results_csv_names_v5_0s_three_losses(uninterrupted):
    header, rows = results(uninterrupted.save_dir)
    assert [c for c in header if c.endswith("_loss")] == [*LOSS_COLUMNS, "val/box_loss", "val/obj_loss",
                                                          "val/cls_loss"]
    assert len(rows) == 4 and all(math.isfinite(row[c]) and row[c] >= 0 for row in rows for c in LOSS_COLUMNS)


@pytest.mark.compat
def test_lr_columns_are_what_lr_curve_draws_with_the_warmup_floor(uninterrupted):
    """The trainer ramps over 3 iterations (warmup_min_iters), not 2, and plot_lr's curve is what it applied."""
    args = torch_load(uninterrupted.save_dir / "weights" / "last.pt", map_location="cpu")["model"].args
    _, rows = results(uninterrupted.save_dir)
    curve = lr_curve(args, epochs=4, batches_per_epoch=2)
    schedule = schedule_from_hyp(args, epochs=4)
    assert rows[0]["lr/pg0"] == pytest.approx(0.01 * schedule(0) / 3, rel=1e-5)  # iteration 1 of 3
    for epoch, row in enumerate(rows):
        assert row["lr/pg0"] == pytest.approx(curve.lrs[2 * epoch + 1], rel=1e-5)  # each epoch's last batch
    # v5.0's one-epoch lag (lr_epoch_lag, a v5.0 model's default): epoch 3 trains at f(2), the first cycle's floor;
    # the restart at epoch 2 would show at epoch 4, past this run's end
    assert args["lr_epoch_lag"] is True and rows[2]["lr/pg0"] == pytest.approx(0.01 * schedule(1), rel=1e-5)
    assert rows[3]["lr/pg0"] == pytest.approx(0.01 * schedule(2), rel=1e-5) and schedule(2) < schedule(1)


def test_the_checkpoint_holds_the_v5_0_model_its_recipe_and_the_ema(uninterrupted):
    checkpoint = torch_load(uninterrupted.weights, map_location="cpu")
    args = checkpoint["model"].args  # all of the run's settings (the final strip keeps ultralytics' in train_args)
    recipe = ("box", "obj", "cls", "cls_pw", "obj_pw", "anchor_t", "fl_gamma", "label_smoothing_eps", "iou")
    assert {key: args[key] for key in recipe} == {
        "box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0,
        "label_smoothing_eps": 0.0, "iou": 0.6}
    assert args["cawb"] is True and args["warmup_min_iters"] == 3 and args["autoanchor"] is True
    assert type(checkpoint["model"]) is YOLOv5Model and checkpoint["model"].model[-1].anchors.dtype.is_floating_point
    assert type(uninterrupted.ema["model"]) is YOLOv5Model
    assert uninterrupted.ema["updates"] == 8  # the EMA followed every optimizer step: 4 epochs x 2 batches


@pytest.mark.compat
def test_resume_continues_the_same_run_bit_for_bit(uninterrupted, resumed):
    """Exact resume: the full-precision model, EMA, optimizer, random states and data order of last.pt's epoch."""
    assert resumed.save_dir.name == "stopped"
    header, rows = results(resumed.save_dir)
    reference_header, reference = results(uninterrupted.save_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4] and header == reference_header
    for mine, theirs in zip(rows, reference):
        for column in header:
            if column != "time":
                assert mine[column] == theirs[column], (mine["epoch"], column)
    # a finished run cannot be resumed: the state file is gone, last.pt stays
    assert not (resumed.save_dir / "weights" / "last.pt.resume-state").exists()
    assert (resumed.save_dir / "weights" / "last.pt").is_file()


@pytest.mark.compat
def test_evaluate_script_scores_best_pt_with_pycocotools(uninterrupted, tiny_shapes, tmp_path, capsys):
    from cawb.cli.evaluate import main

    assert main(["--weights", str(uninterrupted.weights), "--data", str(tiny_shapes), "--imgsz", "64",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pycocotools  mAP50" in out and "ultralytics  mAP50" in out
    assert (tmp_path / "predictions.json").is_file()


def test_best_pt_predicts_and_exports_with_plain_ultralytics_in_a_fresh_process(uninterrupted, tiny_shapes, tmp_path):
    image = next((tiny_shapes.parent / "images" / "val").iterdir())
    code = f"""
import os
os.environ["YOLO_OFFLINE"] = "1"
from ultralytics import YOLO
model = YOLO({str(uninterrupted.weights)!r})  # unpickles cawb.yolov5.model.YOLOv5Model by its path
print("class", type(model.model).__module__, type(model.model).__name__)
result = model.predict({str(image)!r}, imgsz=64, conf=0.0001, verbose=False)[0]
print("boxes", result.boxes.xyxy.shape[1], len(result.boxes), float(result.boxes.conf.max()) <= 1.0)
exported = model.export(format="torchscript", imgsz=64)
again = YOLO(exported, task="detect").predict({str(image)!r}, imgsz=64, conf=0.0001, verbose=False)[0]
print("exported", exported.endswith(".torchscript"), len(again.boxes) == len(result.boxes))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "class cawb.yolov5.model YOLOv5Model" in out.stdout
    boxes = next(line for line in out.stdout.splitlines() if line.startswith("boxes")).split()
    assert boxes[1] == "4" and int(boxes[2]) > 0 and boxes[3] == "True"
    assert "exported True True" in out.stdout


def test_stock_schedule_and_autoanchor_on_a_v5_model_from_a_yaml_path(tiny_shapes, tmp_path):
    # A v5.0 yaml of our own, by path, with anchors 8 times too large for the shapes at 64 px: AutoAnchor refits them.
    yaml_path = tmp_path / "big-anchors.yaml"
    text = bundled_model_yaml("yolov5n-v5.0.yaml").read_text()
    for row in V5_ANCHOR_ROWS:
        text = text.replace(row, "[" + ", ".join(str(8 * int(v)) for v in row.strip("[]").split(",")) + "]")
    yaml_path.write_text(text)
    model = YOLO(str(yaml_path))  # cawb.YOLO builds the v5.0 yaml and trains with cawb's trainer
    model.train(data=str(tiny_shapes), project=str(tmp_path), name="stock", optimizer="SGD",
                **{**SETTINGS, "cawb": False, "cos_lr": True, "lrf": 0.2, "epochs": 3, "warmup_min_iters": 0})
    assert type(model.trainer) is CawbDetectionTrainer and not isinstance(model.trainer.scheduler,
                                                                          CosineAnnealingWarmbootingLR)
    _, rows = results(model.trainer.save_dir)
    curve = lr_curve(vars(model.trainer.args), epochs=3, batches_per_epoch=2)
    assert [row["lr/pg0"] for row in rows] == pytest.approx([curve.lrs[1], curve.lrs[3], curve.lrs[5]], rel=1e-5)
    # one cosine down, no restart; lf(1) twice: the warmup lands on it in epoch 1, v5.0's lag sets it in epoch 2
    assert rows[2]["lr/pg0"] == pytest.approx(rows[1]["lr/pg0"], rel=1e-9) and rows[1]["lr/pg0"] < 0.01

    trained = torch_load(model.trainer.best, map_location="cpu")["model"]
    anchors = trained.model[-1].anchors.float().view(-1, 2)
    assert anchors.max() < 8 * 10  # refitted: even the smallest of the yaml's anchors was 80 x 104 px
    assert sum(trained.yaml["anchors"], []) == pytest.approx(anchors.view(-1).tolist(), abs=0.01)  # yaml follows


def test_time_budget_mode_rebuilds_the_schedule_for_a_v5_model(tiny_shapes, tmp_path):
    seen = {}
    model = YOLO("yolov5n-v5.0.yaml")
    model.add_callback("on_train_epoch_start", lambda t: seen.setdefault(t.epoch, {"epochs": t.epochs}))
    model.add_callback("on_train_epoch_end", lambda t: seen[t.epoch].update(lr=t.optimizer.param_groups[0]["lr"]))
    model.train(data=str(tiny_shapes), project=str(tmp_path), name="timed", optimizer="SGD",
                **{**SETTINGS, "cawb_steps": [1, 2], "epochs": 100, "time": 0.001, "warmup_epochs": 0})
    assert seen[0]["epochs"] == 100 and any(record["epochs"] != 100 for record in seen.values())
    for epoch, record in seen.items():  # v5.0's lag: epoch e at the rebuilt schedule's value for e - 1
        schedule = schedule_from_hyp(vars(model.trainer.args), epochs=record["epochs"])
        assert record["lr"] == pytest.approx(0.01 * schedule(max(epoch - 1, 0)), rel=1e-9), epoch


def test_ddp_worker_rebuilds_the_trainer_for_a_v5_model_and_trains(tiny_shapes, tmp_path):
    overrides = {**SETTINGS, "data": str(tiny_shapes), "project": str(tmp_path), "name": "ddp", "epochs": 2,
                 "model": str(bundled_model_yaml("yolov5n-v5.0.yaml")), "optimizer": "SGD"}
    trainer = CawbDetectionTrainer(overrides=overrides)
    file = generate_ddp_file(trainer)
    try:
        state = torch_load(Path(file).with_suffix(".pt"), map_location="cpu")
        assert state["trainer"] is CawbDetectionTrainer
        assert {key: state["args"][key] for key in ("box", "obj", "anchor_t", "iou")} == {
            "box": 0.05, "obj": 1.0, "anchor_t": 4.0, "iou": 0.6}  # the v5.0 recipe travels to the workers
        worker = state["trainer"](cfg={**DEFAULT_CFG_DICT, "save_dir": ""}, overrides=state["args"],
                                  _callbacks=state["callbacks"])
        assert worker.args.box == 0.05 and worker.cawb_schedule() == trainer.cawb_schedule()

        subprocess.run([sys.executable, file], check=True, capture_output=True, timeout=300)
        header, rows = results(tmp_path / "ddp")
        assert len(rows) == 2 and "train/obj_loss" in header
        assert type(torch_load(tmp_path / "ddp" / "weights" / "last.pt", map_location="cpu")["model"]) is YOLOv5Model
    finally:
        ddp_cleanup(trainer, file)
