"""cawb/training/cawb_mixin.py: the CAWB part alone, in front of an ultralytics trainer cawb does not compose."""

from pathlib import Path

import pytest
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer

from cawb.lr_scheduler import CosineAnnealingWarmbootingLR
from cawb.schedule import CawbSchedule
from cawb.training.cawb_mixin import CawbMixin


class OnlyCawb(CawbMixin, DetectionTrainer):
    """ultralytics' plain detection trainer with nothing of cawb's but the schedule."""


@pytest.mark.slow
def test_the_mixin_alone_gives_an_ultralytics_trainer_the_cawb_schedule(tiny_shapes, tmp_path):
    model = YOLO("yolov5n.yaml")
    model.train(trainer=OnlyCawb, data=str(tiny_shapes), epochs=4, imgsz=64, batch=8, device="cpu", workers=0,
                optimizer="SGD", lr0=0.01, warmup_epochs=1, seed=0, val=False, plots=False, project=str(tmp_path),
                name="only-cawb", cawb=True, cawb_steps=[2], cawb_step_scale=0.5, cawb_lf_min=0.2)
    trainer = model.trainer
    expected = CawbSchedule(epochs=4, warmup_epochs=1, restart_epochs=[2], step_scale=0.5, lf_min=0.2)
    assert isinstance(trainer.scheduler, CosineAnnealingWarmbootingLR) and trainer.cawb_schedule() == expected
    lines = (Path(trainer.save_dir) / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]
    assert [row["lr/pg0"] for row in rows[1:]] == pytest.approx([0.01 * expected(epoch) for epoch in (1, 2, 3)],
                                                                rel=1e-6)
    assert not hasattr(trainer, "_exact_resume")  # the other parts are not there
