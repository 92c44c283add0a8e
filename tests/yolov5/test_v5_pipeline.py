"""YOLOv5 v5.0's pipeline in ultralytics' trainer (cawb/yolov5/recipe.py PIPELINE_KEYS, V5RecipeMixin): each switch
checked on the real ultralytics objects a trainer builds, for a v5.0 model (v5.0's values) and for one of
ultralytics' (ultralytics' own behaviour); one tiny v5.0 training run for what only a run shows.
"""

import math
import pickle
from copy import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from ultralytics.data.augment import Albumentations, Compose, Mosaic, RandomHSV, RandomPerspective
from ultralytics.engine.trainer import BaseTrainer
from ultralytics.utils.patches import torch_load

from cawb import CawbDetectionTrainer
from cawb.training.lr_curve import lr_curve
from cawb.training.train import train
from cawb.utils.ultralytics_compat import MAP50_95_KEY, MAP50_KEY, stock_lr_factor
from cawb.yolov5.recipe import PIPELINE_KEYS
from cawb.yolov5.trainer import GRAD_NORM_COLUMNS

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = {"v5.0": "yolov5n-v5.0.yaml", "ultralytics": "yolov5n.yaml"}


def build_trainer(kind, data, project):
    """A trainer as ``model.train(trainer=CawbDetectionTrainer, ...)`` builds it, with its model (not trained)."""
    trainer = CawbDetectionTrainer(overrides=dict(model=MODELS[kind], data=str(data), imgsz=64, batch=8,
                                                  device="cpu", workers=0, plots=False, project=str(project),
                                                  name=kind, exist_ok=True))
    trainer.model = trainer.get_model(cfg=MODELS[kind], verbose=False)
    return trainer


@pytest.fixture(scope="module")
def trainers(tiny_shapes, tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    return {kind: build_trainer(kind, tiny_shapes, project) for kind in MODELS}


@pytest.fixture(scope="module")
def datasets(trainers, tiny_shapes):
    """The training dataset each trainer builds (ultralytics' YOLODataset, with its augmentation pipeline)."""
    images = str(tiny_shapes.parent / "images" / "train")
    return {kind: trainer.build_dataset(images, mode="train", batch=8) for kind, trainer in trainers.items()}


def transforms_of(pipeline, kind):
    """Every transform of type ``kind`` in a pipeline, nested Composes and mix transforms' pre-transforms too."""
    found, pending, seen = [], [pipeline], set()
    while pending:
        transform = pending.pop()
        if id(transform) in seen:
            continue
        seen.add(id(transform))
        if isinstance(transform, kind):
            found.append(transform)
        if isinstance(transform, Compose):
            pending.extend(transform.transforms)
        pending.append(getattr(transform, "pre_transform", None))
    return found


def test_each_kind_gets_its_pipeline_settings(trainers):
    for kind, trainer in trainers.items():
        expected = {key: values[0 if kind == "ultralytics" else 1] for key, values in PIPELINE_KEYS.items()}
        assert {key: getattr(trainer.args, key) for key in PIPELINE_KEYS} == expected


def tall_and_flat_boxes():
    """Boxes before and after an affine: one kept by both filters, one of aspect ratio 30 (after), dropped by v5.0's
    filter (below 20) and kept by ultralytics' (below 100)."""
    before = np.array([[0, 0, 40, 40], [0, 0, 60, 60]], dtype=float).T
    after = np.array([[0, 0, 40, 40], [0, 0, 120, 4]], dtype=float).T
    return before, after


@pytest.mark.compat
def test_a_v5_0_pipeline_filters_boxes_at_ratio_20_has_no_albumentations_and_draws_mosaic_from_everything(
        trainers, datasets):
    dataset = datasets["v5.0"]
    rebuilt = dataset.build_transforms(copy(trainers["v5.0"].args))  # as closing mosaic rebuilds it
    for pipeline in (dataset.transforms, rebuilt):
        affines = transforms_of(pipeline, RandomPerspective)
        assert affines and all(a.box_candidates(*tall_and_flat_boxes()).tolist() == [True, False] for a in affines)
        assert not transforms_of(pipeline, Albumentations)
        mosaics = transforms_of(pipeline, Mosaic)
        assert mosaics and not any(mosaic.buffer_enabled for mosaic in mosaics)

    # with one image loaded, ultralytics' buffer would give it as all three partners: v5.0 draws from all 16
    mosaic = transforms_of(dataset.transforms, Mosaic)[0]
    dataset.buffer[:] = [0]
    partners = {index for _ in range(20) for index in mosaic.get_indexes()}
    assert len(partners) > 5 and partners <= set(range(len(dataset)))


def test_an_ultralytics_models_pipeline_is_ultralytics_own(trainers, datasets):
    dataset = datasets["ultralytics"]
    affine = transforms_of(dataset.transforms, RandomPerspective)[0]
    assert "box_candidates" not in vars(affine) and affine.box_candidates(*tall_and_flat_boxes()).tolist() == [True,
                                                                                                              True]
    assert len(transforms_of(dataset.transforms, Albumentations)) == 1  # inert unless the package is installed
    assert all(mosaic.buffer_enabled for mosaic in transforms_of(dataset.transforms, Mosaic))
    assert "apply_image" not in vars(transforms_of(dataset.transforms, RandomHSV)[0])
    rebuilt = dataset.build_transforms(copy(trainers["ultralytics"].args))
    assert len(transforms_of(rebuilt, Albumentations)) == 1


def hue_after(hsv_transform, hue, seed=0):
    """The hue (OpenCV's 0-179) of a one-colour image at full saturation and value after ``hsv_transform``, and the
    random draw it made."""
    import cv2

    image = cv2.cvtColor(np.full((4, 4, 3), (hue, 255, 255), dtype=np.uint8), cv2.COLOR_HSV2BGR)
    np.random.seed(seed)
    draw = np.random.uniform(-1, 1, 3)[0]
    np.random.seed(seed)
    out = hsv_transform({"img": image})["img"]
    return int(cv2.cvtColor(out, cv2.COLOR_BGR2HSV)[0, 0, 0]), draw


def test_a_v5_0_pipeline_multiplies_the_hue_ultralytics_shifts_it(datasets):
    v5, ultra = (transforms_of(datasets[kind].transforms, RandomHSV)[0] for kind in ("v5.0", "ultralytics"))
    for transform in (v5, ultra):
        transform.hgain, transform.sgain, transform.vgain = 0.5, 0.0, 0.0
    try:
        multiplied, draw = hue_after(v5, 100)
        shifted, same_draw = hue_after(ultra, 100)
    finally:
        for transform in (v5, ultra):
            transform.hgain, transform.sgain, transform.vgain = 0.015, 0.7, 0.4
    assert draw == same_draw and abs(draw) > 0.05  # seed 0 draws 0.0976
    assert abs(multiplied - round((100 * (1 + 0.5 * draw)) % 180)) <= 1  # v5.0: 100 x 1.049 = 105
    assert abs(shifted - round((100 + 0.5 * draw * 180) % 180)) <= 1  # ultralytics: 100 + 8.8 = 109
    assert abs(multiplied - shifted) >= 3


def test_the_configured_dataset_pickles_for_spawned_workers(trainers, datasets):
    unpickled = pickle.loads(pickle.dumps(datasets["v5.0"]))
    affine = transforms_of(unpickled.transforms, RandomPerspective)[0]
    assert affine.box_candidates(*tall_and_flat_boxes()).tolist() == [True, False]
    assert not transforms_of(unpickled.build_transforms(copy(trainers["v5.0"].args)), Albumentations)


@pytest.mark.parametrize("kind,applied", [("v5.0", 1.0), ("ultralytics", 10.0 / 5e4)])
def test_the_optimizer_step_clips_only_ultralytics_models_and_keeps_the_norm(trainers, kind, applied):
    trainer = trainers[kind]
    model, saved = torch.nn.Linear(2, 1, bias=False), (trainer.model, trainer.ema, trainer.device)
    with torch.no_grad():
        model.weight.zero_()
    trainer.model, trainer.ema, trainer.device = model, None, torch.device("cpu")
    trainer.optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer.scaler = torch.amp.GradScaler("cpu", enabled=False)
    try:
        model.weight.grad = torch.tensor([[3e4, 4e4]])
        trainer.optimizer_step()
        assert model.weight.flatten().tolist() == pytest.approx([-3e4 * applied, -4e4 * applied], rel=1e-6)
        assert float(trainer.grad_norms[-1]) == 5e4  # before clipping, both kinds
    finally:
        trainer.model, trainer.ema, trainer.device = saved
        trainer.grad_norms.clear()


def test_best_pt_is_the_epoch_with_the_best_tenth_map50_nine_tenths_map50_95(trainers):
    """ultralytics saves best.pt when best_fitness == fitness after validating: the epoch the fitness ranks first."""
    epochs = [(0.50, 0.30), (0.90, 0.29), (0.20, 0.31)]  # mAP50-95 ranks epoch 2 first, 0.1/0.9 ranks epoch 1
    for kind, best_epoch in (("v5.0", 1), ("ultralytics", 2)):
        trainer = trainers[kind]
        trainer.best_fitness, trainer.loss, saved = None, torch.tensor(1.0), []  # the loss: ultralytics' fallback
        for epoch, (map50, map50_95) in enumerate(epochs):
            trainer.validator = lambda _, m=(map50, map50_95): {MAP50_KEY: m[0], MAP50_95_KEY: m[1],
                                                                 "fitness": m[1]}  # ultralytics': mAP50-95
            metrics, trainer.fitness = trainer.validate()
            if trainer.best_fitness == trainer.fitness:
                saved.append(epoch)
        assert saved[-1] == best_epoch, kind
    assert trainers["v5.0"].best_fitness == pytest.approx(0.1 * 0.90 + 0.9 * 0.29)


# -- one tiny run of a v5.0 model with the stock cos schedule ----------------------------------------------------
SETTINGS = dict(epochs=4, imgsz=64, batch=8, nbs=8, device="cpu", workers=0, lr0=0.01, lrf=0.2, cos_lr=True,
                warmup_epochs=1, warmup_min_iters=0, seed=0, val=True, plots=False, exist_ok=True, cawb=False)


def results(save_dir):
    lines = (Path(save_dir) / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    return header, [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]


@pytest.fixture(scope="module")
def cos_run(tiny_shapes, tmp_path_factory):
    seen = {}

    def keep_trainer(trainer):
        seen["trainer"] = trainer

    result = train(data=str(tiny_shapes), cfg="yolov5n-v5.0.yaml", hyp=str(REPO_ROOT / "hyp/hyp.shapes-cos.yaml"),
                   project=str(tmp_path_factory.mktemp("runs")), name="cos", callbacks={"on_train_end": keep_trainer},
                   **SETTINGS)
    result.trainer = seen["trainer"]
    return result


@pytest.mark.slow
@pytest.mark.compat
def test_the_cos_arm_trains_epoch_e_at_the_schedule_of_e_minus_1_as_v5_0_did(cos_run):
    """One warmup epoch of 2 batches: epoch 1 ramps to lf(1) at its first batch and keeps it; from epoch 2 on the
    scheduler, stepped at the epoch's start, sets lf(e - 1). lr_curve draws the same."""
    args = torch_load(cos_run.save_dir / "weights" / "last.pt", map_location="cpu")["model"].args
    assert args["lr_epoch_lag"] is True
    _, rows = results(cos_run.save_dir)
    lf = stock_lr_factor(args, epochs=4)
    assert [row["lr/pg0"] for row in rows[2:]] == pytest.approx([0.01 * lf(1), 0.01 * lf(2)], rel=1e-5)
    curve = lr_curve(args, epochs=4, batches_per_epoch=2)
    assert [row["lr/pg0"] for row in rows] == pytest.approx(curve.lrs[1::2], rel=1e-5)  # each epoch's last batch
    assert min(abs(lr - 0.01 * lf(3)) for lr in curve.lrs) > 1e-4  # the schedule's last value is never trained


@pytest.mark.slow
def test_results_csv_has_the_gradient_norm_and_best_pt_the_v5_0_fitness(cos_run):
    header, rows = results(cos_run.save_dir)
    assert header[-2:] == list(GRAD_NORM_COLUMNS) and len(rows) == 4
    for row in rows:
        mean, largest = (row[column] for column in GRAD_NORM_COLUMNS)
        assert math.isfinite(mean) and 0 < mean <= largest
    best = torch_load(cos_run.save_dir / "weights" / "best.pt", map_location="cpu")["train_metrics"]
    assert best["fitness"] == pytest.approx(0.1 * best[MAP50_KEY] + 0.9 * best[MAP50_95_KEY])
    ranked = max(0.1 * row[MAP50_KEY] + 0.9 * row[MAP50_95_KEY] for row in rows)
    assert best["fitness"] == pytest.approx(ranked, abs=1e-5)
    affine = transforms_of(cos_run.trainer.train_loader.dataset.transforms, RandomPerspective)[0]
    assert affine.box_candidates(*tall_and_flat_boxes()).tolist() == [True, False]  # the dataset it trained on
    assert not hasattr(BaseTrainer, "grad_norms")  # ultralytics' classes are left as they are
