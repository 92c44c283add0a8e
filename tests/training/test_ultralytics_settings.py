"""cawb/training/ultralytics_settings.py: ultralytics' own type and range checks, run up front, in one line."""

import pytest

from cawb.training.ultralytics_settings import check_ultralytics_settings, tunable_ultralytics_keys
from cawb.utils.errors import HypError


@pytest.mark.parametrize("settings,message", [
    ({"lr0": "abc"}, "lr0='abc' is invalid: it must be a number in [0, 1]"),
    ({"lr0": [0.1, 0.2]}, "lr0=[0.1, 0.2] is invalid"),
    ({"lr0": None}, "lr0 is empty: it must be a number in [0, 1]"),
    ({"lr0": 1.5}, "lr0=1.5 is invalid: it must be a number in [0, 1]"),
    ({"warmup_epochs": -1}, "warmup_epochs=-1 is invalid: it must be a finite number >= 0"),
    ({"lr0": float("inf")}, "lr0=inf is invalid"),
    ({"lr0": -1}, "lr0=-1 is invalid"),
    ({"lr0": True}, "lr0=True is invalid"),
    ({"epochs": "three"}, "epochs='three' is invalid: it must be an integer >= 1"),
    ({"epochs": 0}, "epochs=0 is invalid: it must be an integer >= 1"),
    ({"mosaic": 2}, "mosaic=2 is invalid: it must be a number in [0, 1]"),
    ({"cos_lr": "yes"}, "cos_lr='yes' is invalid: it must be true or false"),
    ({"optimizer": 5}, "optimizer=5 is invalid: it must be a string"),
    ({"amp": "fp8"}, "amp"),
    ({"optimizer": "SGDD"}, "optimizer='SGDD' is invalid: it must be one of Adam, Adamax, AdamW, auto, "),
    ({"cache": "rma"}, "cache='rma' is invalid: it must be true (or ram), disk or false"),
    ({"imgsz": "abc"}, "imgsz='abc' is invalid: it must be an integer >= 32"),
    ({"imgsz": 16}, "imgsz=16 is invalid"),
    ({"name": 5}, "name=5 is invalid: it must be text"),
])
def test_bad_values_are_refused_in_one_line_naming_source_key_and_value(settings, message):
    with pytest.raises(HypError) as error:
        check_ultralytics_settings(settings, source="hyp.yaml")
    assert str(error.value).startswith("hyp.yaml: ") and message in str(error.value) and "\n" not in str(error.value)


def test_good_values_and_keys_that_are_not_ultralytics_pass():
    check_ultralytics_settings({"lr0": 0.01, "epochs": 3.0, "mosaic": 1, "cos_lr": True, "optimizer": "SGD",
                                "amp": False, "cawb_steps": [3], "scale": 0.5, "batch": -1, "cache": "ram",
                                "imgsz": 64, "name": "exp"})
    check_ultralytics_settings({"optimizer": "adamw", "cache": False})  # ultralytics ignores the case of names


def test_the_optimizers_are_the_ones_ultralytics_builds():
    import torch
    from ultralytics.engine.trainer import BaseTrainer

    from cawb.training.ultralytics_settings import ultralytics_optimizers

    names = ultralytics_optimizers()
    assert {"SGD", "Adam", "AdamW", "auto"} <= set(names)
    stand_in = type("Trainer", (), {"args": type("Args", (), {"lr0": 0.01})(), "data": {}})()
    for name in set(names) - {"auto", "MuSGD"}:  # MuSGD needs a detection head; auto picks another one
        assert isinstance(BaseTrainer.build_optimizer(stand_in, torch.nn.Linear(1, 1), name=name),
                          torch.optim.Optimizer)


def test_tunable_keys_are_the_numeric_hyperparameters_not_run_settings():
    keys = tunable_ultralytics_keys()
    assert {"lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "mosaic", "close_mosaic", "scale"} <= set(keys)
    assert not {"epochs", "batch", "imgsz", "workers", "seed", "cos_lr", "optimizer"} & set(keys)
