"""cawb/training/exact_resume.py: a resumed run repeats the uninterrupted one, with real (tiny, CPU) runs.

The runs are built to reach the hard cases: 3 batches of 6, 6 and 4 images per epoch with 2 batches per optimizer
step (so a step takes one batch from each side of an epoch boundary, and warmup ramps the accumulation), mosaic
with its image buffer, and mosaic closing at epoch 3 of 4 (the loader is reset then). Stops after epochs 1, 2 and
3 resume before, at and after that reset.
"""

import logging
from pathlib import Path

import pytest
import torch

from cawb.training.exact_resume import STATE_SUFFIX, state_path
from cawb.training.train import TrainingInterrupted, train

pytestmark = pytest.mark.slow  # every test trains

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(cfg="yolov5n.yaml", epochs=4, imgsz=64, batch=6, nbs=12, device="cpu", workers=0, lr0=0.01,
                warmup_epochs=1, close_mosaic=2, seed=0, val=False, plots=False, cawb=True, cawb_steps=[2],
                cawb_step_scale=0.8, cawb_epoch_scale=1.5, cawb_lf_min=0.2)


def results(save_dir):
    lines = (Path(save_dir) / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]


def run(data, project, name, **extra):
    return train(data=str(data), hyp=str(REPO_ROOT / "hyp/hyp.shapes-cawb.yaml"), project=str(project), name=name,
                 **{**SETTINGS, **extra})


def stopped(data, project, name, after_epochs, **extra):
    """A run stopped as by Ctrl-C once epoch ``after_epochs`` is saved: its last.pt."""
    def stop(trainer):
        if trainer.epoch == after_epochs - 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as interrupted:
        run(data, project, name, callbacks={"on_fit_epoch_end": stop}, **extra)
    return interrupted.value.last


@pytest.fixture(scope="module")
def uninterrupted(tiny_shapes, tmp_path_factory):
    return results(run(tiny_shapes, tmp_path_factory.mktemp("runs"), "whole").save_dir)


def assert_same_run(rows, reference):
    assert [row["epoch"] for row in rows] == [row["epoch"] for row in reference] == [1, 2, 3, 4]
    for mine, theirs in zip(rows, reference):
        for column in mine:
            if column != "time":
                assert mine[column] == theirs[column], (mine["epoch"], column)


@pytest.mark.compat
@pytest.mark.parametrize("after_epochs", [1, 2, 3])
def test_a_resumed_run_repeats_the_uninterrupted_run(after_epochs, uninterrupted, tiny_shapes, tmp_path, caplog):
    last = stopped(tiny_shapes, tmp_path, "stopped", after_epochs)
    assert state_path(last).is_file()
    with caplog.at_level(logging.INFO):
        result = train(resume=str(last))
    assert "exact resume" in caplog.text
    assert_same_run(results(result.save_dir), uninterrupted)
    assert not state_path(last).exists() and last.is_file()  # a finished run cannot be resumed: the state goes


def test_without_its_state_a_resume_is_ultralytics_own_and_says_so(uninterrupted, tiny_shapes, tmp_path, caplog):
    last = stopped(tiny_shapes, tmp_path, "stopped", 2)
    state = state_path(last)
    state.rename(tmp_path / "kept-aside")
    with caplog.at_level(logging.INFO):
        result = train(resume=str(last))
    assert f"no last.pt{STATE_SUFFIX} beside it" in caplog.text and "resuming" in caplog.text
    rows = results(result.save_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    # ultralytics resumes from the rounded EMA weights with the data order from the seed: another run after the stop
    assert any(rows[2][column] != uninterrupted[2][column] for column in ("train/box_loss", "train/cls_loss"))


@pytest.mark.parametrize("damage", ["garbage", "older epoch"])
def test_a_state_that_does_not_belong_to_last_pt_is_not_used(damage, tiny_shapes, tmp_path, caplog):
    last = stopped(tiny_shapes, tmp_path, "stopped", 2)
    state = state_path(last)
    if damage == "garbage":
        state.write_bytes(b"not a torch file")
        expected = "cannot be read"
    else:  # the state of epoch 1 beside the last.pt of epoch 2 (as if the process died between the two writes)
        older = torch.load(state, weights_only=False)
        older["epoch"] -= 1
        torch.save(older, state)
        expected = "belongs to another state of the run"
    with caplog.at_level(logging.INFO):
        result = train(resume=str(last))
    assert expected in caplog.text and "exact resume from" not in caplog.text
    assert [row["epoch"] for row in results(result.save_dir)] == [1, 2, 3, 4]


def test_switched_off_no_state_is_written_and_the_resume_is_ultralytics_own(tiny_shapes, tmp_path, caplog):
    last = stopped(tiny_shapes, tmp_path, "off", after_epochs=1, exact_resume=False)
    assert last.is_file() and not state_path(last).exists()
    on = stopped(tiny_shapes, tmp_path, "on", after_epochs=1)
    assert state_path(on).is_file()  # the same run with the part on writes its state

    with caplog.at_level(logging.INFO):
        rows = results(train(resume=str(last)).save_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert "exact resume from" not in caplog.text and not state_path(last).exists()
