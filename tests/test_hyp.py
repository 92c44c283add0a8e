"""cawb/hyp.py: hyp files with ultralytics keys, cawb_* keys and YOLOv5 keys."""

import logging
import textwrap
from pathlib import Path

import pytest

from cawb.hyp import CAWB_HYP_KEYS, HypError, cawb_hyp_defaults, load_hyp, resolve_lf, schedule_from_hyp, validate_hyp
from cawb.schedule import CawbSchedule

REPO = Path(__file__).resolve().parents[1]


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
    # The two arms differ only in the schedule keys.
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


def test_yolov5_hyp_file_keeps_counterparts_and_drops_the_rest_in_one_warning(tmp_path, caplog):
    path = write(tmp_path, """\
        lr0: 0.01
        lrf: 0.2
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
        mosaic: 1.0
    """)
    with caplog.at_level(logging.WARNING, logger="cawb"):
        hyp = load_hyp(path)
    assert hyp == {"lr0": 0.01, "lrf": 0.2, "momentum": 0.937, "hsv_h": 0.015, "mosaic": 1.0}
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    for key in ("box", "cls", "cls_pw", "obj", "obj_pw", "iou_t", "anchor_t", "fl_gamma"):
        assert f"{key} (" in warnings[0]


def test_ultralytics_loss_gains_are_kept_in_an_ultralytics_hyp_file():
    assert validate_hyp({"box": 7.5, "cls": 0.5, "cls_pw": 0.5}) == {"box": 7.5, "cls": 0.5, "cls_pw": 0.5}


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

    from cawb.hyp import ultralytics_defaults

    assert ultralytics_defaults() == dict(DEFAULT_CFG_DICT)
