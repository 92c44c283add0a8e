"""cawb/training/hyp.py and cawb/yolov5/recipe.py: hyp files with ultralytics keys, cawb_* keys and YOLOv5 keys."""

import logging
import textwrap
from pathlib import Path

import pytest

from cawb.schedule import CawbSchedule
from cawb.training.hyp import (
    CAWB_HYP_KEYS,
    HypError,
    cawb_hyp_defaults,
    load_hyp,
    resolve_lf,
    schedule_from_hyp,
    validate_hyp,
)
from cawb.yolov5.recipe import hyp_for_model, kind_defaults

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text, name="hyp.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_repo_hyp_files_describe_the_article_arms():
    cos = load_hyp(REPO / "hyp/hyp.scratch-cos.yaml")
    cawb = load_hyp(REPO / "hyp/hyp.scratch-cawb.yaml")
    assert cos["optimizer"] == cawb["optimizer"] == "SGD"  # 'auto' would ignore lr0
    assert schedule_from_hyp(cos) is None and cos["cos_lr"] is True
    assert schedule_from_hyp(cawb) == CawbSchedule(
        epochs=150, warmup_epochs=3, restart_epochs=[30, 80], step_scale=0.7, epoch_scale=4.0, lf="cos", lf_min=0.35
    )
    # The two arms differ only in the schedule keys; both set v5.0's 1000-iteration warmup floor.
    differing = {key for key in set(cos) | set(cawb) if cos.get(key) != cawb.get(key)}
    assert differing == set(CAWB_HYP_KEYS)
    for key, value in dict(lr0=0.01, lrf=0.2, momentum=0.937, weight_decay=0.0005, warmup_epochs=3.0,
                           warmup_momentum=0.8, warmup_bias_lr=0.1).items():
        assert cos[key] == value


def test_every_key_of_the_repo_hyp_files_is_commented():
    for path in (REPO / "hyp").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if line and not line.startswith("#"):
                assert " # " in line, f"{path.name}: key without a comment: {line}"


def test_unknown_key_names_the_closest_valid_one(tmp_path):
    path = write(tmp_path, "lr0: 0.01\ncawb_step: [30]\n")
    with pytest.raises(HypError, match=r"unknown key 'cawb_step' \(did you mean 'cawb_steps'\?\)"):
        load_hyp(path)
    with pytest.raises(HypError, match="did you mean 'momentum'"):
        validate_hyp({"momentun": 0.9})


V5_FILE = """\
    lr0: 0.01
    momentum: 0.937
    box: 0.05
    cls: 0.5
    cls_pw: 1.0
    obj: 1.0
    obj_pw: 1.0
    iou_t: 0.2
    anchor_t: 4.0
    fl_gamma: 0.0
    hsv_h: 0.015
"""


def test_a_yolov5_v5_0_hyp_file_is_used_as_is_by_a_v5_0_model(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="cawb"):
        hyp = load_hyp(write(tmp_path, V5_FILE))
    assert "iou_t" not in hyp and "iou_t (unused by v5.0's loss too" in caplog.text  # no model reads it
    assert hyp_for_model(hyp, "v5.0", "v5.yaml") == hyp and hyp["box"] == 0.05 and hyp["anchor_t"] == 4.0


def test_v5_0_gains_with_an_anchor_free_model_stop_with_one_line(tmp_path):
    hyp = load_hyp(write(tmp_path, V5_FILE))
    with pytest.raises(HypError, match=r"v5.yaml: box=0.05, obj=1.0, cls=0.5 are YOLOv5 v5.0's loss gains, meant for "
                                       r"a v5.0 model \(e.g. --cfg yolov5s-v5.0.yaml\)") as caught:
        hyp_for_model(hyp, "ultralytics", "v5.yaml")
    assert "\n" not in str(caught.value)
    with pytest.raises(HypError, match="box=0.05 is YOLOv5 v5.0's loss gain"):
        hyp_for_model({"box": 0.05}, "ultralytics", "cmd")  # v5.0's scale, below ultralytics' tuning range


def test_v5_0_settings_without_gains_are_dropped_for_an_anchor_free_model_in_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="cawb"):
        hyp = hyp_for_model({"lr0": 0.01, "anchor_t": 4.0, "fl_gamma": 0.0, "cls_pw": 1.0}, "ultralytics", "f.yaml")
    assert hyp == {"lr0": 0.01}
    assert len(caplog.records) == 1 and "anchor_t=4.0, fl_gamma=0.0, cls_pw=1.0" in caplog.text


def test_ultralytics_gains_with_a_v5_0_model_stop_with_one_line():
    with pytest.raises(HypError, match=r"u.yaml: box=7.5, cls=0.5, dfl=1.5 are ultralytics' loss gains"):
        hyp_for_model({"box": 7.5, "cls": 0.5, "dfl": 1.5}, "v5.0", "u.yaml")
    assert validate_hyp({"box": 7.5, "cls": 0.5, "cls_pw": 0.5}) == {"box": 7.5, "cls": 0.5, "cls_pw": 0.5}
    assert hyp_for_model({"box": 7.5, "cls": 0.5, "cls_pw": 0.5}, "ultralytics") == {"box": 7.5, "cls": 0.5,
                                                                                       "cls_pw": 0.5}


def test_a_hyp_without_loss_settings_suits_both_kinds_and_gets_each_kinds_defaults():
    for name in ("hyp.scratch-cawb.yaml", "hyp.scratch-cos.yaml", "hyp.shapes-cawb.yaml", "hyp.shapes-cos.yaml"):
        hyp = load_hyp(REPO / "hyp" / name)
        assert hyp_for_model(hyp, "v5.0") == hyp_for_model(hyp, "ultralytics") == hyp
    assert kind_defaults("ultralytics") == {}
    assert kind_defaults("v5.0") == {"box": 0.05, "obj": 1.0, "cls": 0.5, "cls_pw": 1.0, "obj_pw": 1.0,
                                     "anchor_t": 4.0, "fl_gamma": 0.0, "label_smoothing_eps": 0.0, "iou": 0.6,
                                     "max_grad_norm": 0.0, "lr_epoch_lag": True, "mosaic_buffer": False,
                                     "hsv_h_mode": "multiply", "box_ar_thr": 20.0, "albumentations": False,
                                     "fitness_map50_weight": 0.1}
    assert load_hyp(REPO / "hyp/hyp.scratch-cawb.yaml")["warmup_min_iters"] == 1000  # v5.0's warmup floor


@pytest.mark.parametrize(
    "hyp,kind,message",
    [
        ({"anchor_t": 1.0}, "ultralytics", "anchor_t=1.0 is invalid: it must be a number > 1"),
        ({"label_smoothing_eps": 1.0}, "ultralytics", "label_smoothing_eps=1.0 is invalid: it must be a number in"),
        ({"warmup_min_iters": 2.5}, "ultralytics", "warmup_min_iters=2.5 is invalid: it must be an integer >= 0"),
        ({"autoanchor": "yes"}, "ultralytics", "autoanchor='yes' is invalid: it must be true or false"),
        ({"cls_pw": 0}, "v5.0", "cls_pw=0 is invalid: it must be a number > 0"),
        ({"box": -0.05}, "v5.0", "box=-0.05 is invalid: it must be a number >= 0"),
        ({"max_grad_norm": -1}, "v5.0", "max_grad_norm=-1 is invalid: it must be a number >= 0 \\(0 = no clipping"),
        ({"lr_epoch_lag": 1}, "ultralytics", "lr_epoch_lag=1 is invalid: it must be true or false"),
        ({"mosaic_buffer": "no"}, "v5.0", "mosaic_buffer='no' is invalid: it must be true or false"),
        ({"hsv_h_mode": "mul"}, "ultralytics", "hsv_h_mode='mul' is invalid: it must be add or multiply"),
        ({"box_ar_thr": 1}, "v5.0", "box_ar_thr=1 is invalid: it must be a number > 1"),
        ({"albumentations": None}, "v5.0", "albumentations=None is invalid: it must be true or false"),
        ({"fitness_map50_weight": 1.5}, "ultralytics", "fitness_map50_weight=1.5 is invalid: it must be a number in"),
    ],
)
def test_bad_recipe_values_are_named_by_their_key(hyp, kind, message):
    with pytest.raises(HypError, match=message):
        hyp_for_model(validate_hyp(hyp, source="my.yaml"), kind, "my.yaml")


def test_label_smoothing_points_to_its_cawb_name():
    with pytest.raises(HypError, match="unknown key 'label_smoothing' \\(YOLOv5's --label-smoothing: give "
                                       "label_smoothing_eps=EPS"):
        validate_hyp({"label_smoothing": 0.1})


@pytest.mark.parametrize(
    "hyp,message",
    [
        ({"cawb": "yes"}, "cawb='yes' is invalid"),
        ({"cawb_steps": 30}, "cawb_steps=30 is invalid"),
        ({"cawb_steps": [30, "x"]}, "cawb_steps='x' is invalid"),
        ({"cawb_step_scale": 0}, "cawb_step_scale=0 is invalid: it must be > 0"),
        ({"cawb_epoch_scale": -1.0}, "cawb_epoch_scale=-1.0 is invalid"),
        ({"cawb_epoch_scale_mode": "strech"}, "cawb_epoch_scale_mode='strech' is invalid"),
        ({"cawb_lf": "cosine"}, "cawb_lf='cosine' is invalid"),
        ({"cawb_lf": "no_such_module_xyz:f"}, "cannot import module 'no_such_module_xyz'"),
        ({"cawb_lf": "math:no_such_function"}, "has no attribute 'no_such_function'"),
        ({"cawb_lf": "math:pi"}, "is not callable"),
        ({"cawb_lf_min": 2}, "cawb_lf_min=2 is invalid: it must be in \\[0, 1\\]"),
        ({"cawb_steps": [-3, 5]}, "cawb_steps=\\[-3, 5\\] is invalid: it must be a list of epoch numbers >= 0"),
        ({"cawb_lf": "os:system"}, "cawb_lf='os:system': custom lf posix.system\\(x=0, .*did not return a number"),
        ({"cawb_lf": "math:sqrt"}, "cawb_lf='math:sqrt': custom lf math.sqrt"),
    ],
)
def test_bad_cawb_values_are_named_by_their_hyp_key(hyp, message):
    with pytest.raises(HypError, match=message):
        validate_hyp(hyp, source="my.yaml")


def test_epoch_dependent_errors_name_the_hyp_key():
    with pytest.raises(HypError, match="my.yaml: epochs=0 is invalid"):
        schedule_from_hyp({"cawb": True}, epochs=0, source="my.yaml")


def test_lf_import_path_is_imported_not_evaluated(tmp_path, monkeypatch):
    (tmp_path / "my_decays.py").write_text("def half_linear(x, period):\n    return 1 - 0.5 * x / period\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    schedule = schedule_from_hyp({"cawb": True, "cawb_lf": "my_decays:half_linear", "warmup_epochs": 0}, epochs=10)
    assert schedule(5) == pytest.approx(0.75)
    with pytest.raises(HypError):
        resolve_lf("__import__('os').getcwd()")  # text is never eval'd


def test_a_custom_lf_is_tried_at_every_epoch_of_the_run(tmp_path, monkeypatch):
    (tmp_path / "late_decays.py").write_text(
        "def nan_late(x, period):\n    return float('nan') if x > 6 else 1.0\n\n"
        "def raises_late(x, period):\n    return 1 / (period - x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hyp = {"cawb": True, "warmup_epochs": 0}
    assert schedule_from_hyp({**hyp, "cawb_lf": "late_decays:nan_late"}, epochs=6) is not None  # never past 5
    with pytest.raises(HypError, match=r"my.yaml: cawb_lf='late_decays:nan_late': .*\(x=7, period=10\) returned nan"):
        schedule_from_hyp({**hyp, "cawb_lf": "late_decays:nan_late"}, epochs=10, source="my.yaml")
    with pytest.raises(HypError, match=r"\(x=10, period=10\) raised ZeroDivisionError"):
        schedule_from_hyp({**hyp, "cawb_lf": "late_decays:raises_late"}, epochs=10, source="my.yaml")


def test_defaults_come_from_the_schedule_and_apply_to_missing_keys():
    defaults = cawb_hyp_defaults()
    assert set(defaults) == set(CAWB_HYP_KEYS)
    plain = CawbSchedule(epochs=50, warmup_epochs=3)
    assert schedule_from_hyp({"cawb": True, "warmup_epochs": 3}, epochs=50) == plain


def test_warmup_is_limited_like_ultralytics_limits_it():
    assert schedule_from_hyp({"cawb": True, "warmup_epochs": 3}, epochs=2).warmup_epochs == 1


@pytest.mark.parametrize(
    "text,message",
    [("lr0: [0.01\n", "line 2: not valid YAML"), ("- lr0\n- lrf\n", "must be a mapping"), ("1: 2\n", "not a string"),
     ("", "is empty"), ("# only a comment\n", "is empty"),
     ("lr0: 0.01\nlrf: 0.1\nlr0: 0.02\n", "line 3: duplicate key 'lr0' \\(first at line 1\\)")],
)
def test_malformed_files_give_one_line_errors(tmp_path, text, message):
    with pytest.raises(HypError, match=message) as caught:
        load_hyp(write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_missing_file():
    with pytest.raises(HypError, match="hyp file no/such/hyp.yaml not found"):
        load_hyp("no/such/hyp.yaml")


def test_ultralytics_defaults_are_ultralytics_own_without_importing_it():
    from ultralytics.utils import DEFAULT_CFG_DICT

    from cawb.training.ultralytics_settings import ultralytics_defaults

    assert ultralytics_defaults() == dict(DEFAULT_CFG_DICT)


def test_the_v6_0_to_v7_0_hyp_file_holds_their_scratch_low_values_for_classic_models_only():
    hyp = load_hyp(REPO / "hyp/hyp.scratch-low.yaml")
    # YOLOv5 v6.0-v7.0 data/hyps/hyp.scratch-low.yaml (iou_t left out: no YOLOv5 loss reads it)
    for key, value in dict(lr0=0.01, lrf=0.01, momentum=0.937, weight_decay=0.0005, warmup_epochs=3.0,
                           warmup_momentum=0.8, warmup_bias_lr=0.1, box=0.05, cls=0.5, cls_pw=1.0, obj=1.0,
                           obj_pw=1.0, anchor_t=4.0, fl_gamma=0.0, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, degrees=0.0,
                           translate=0.1, scale=0.5, shear=0.0, perspective=0.0, flipud=0.0, fliplr=0.5, mosaic=1.0,
                           mixup=0.0, copy_paste=0.0).items():
        assert hyp[key] == value, key
    assert hyp["cos_lr"] is False and hyp["warmup_min_iters"] == 100 and hyp["optimizer"] == "SGD"
    assert hyp_for_model(hyp, "v5.0") == hyp
    with pytest.raises(HypError, match="meant for a v5.0 model"):
        hyp_for_model(hyp, "ultralytics")
