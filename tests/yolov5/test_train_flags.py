"""cawb/yolov5/train_flags.py: every flag of YOLOv5's train.py (v5.0, v7.0) is cawb-train's own, an alias of the
setting that does the same, or refused in one line saying what to do instead; key=value hints for YOLOv5's names."""

import pytest

from cawb.cli.train import build_parser, main, options_from_args
from cawb.training.hyp import validate_hyp
from cawb.utils.errors import HypError
from cawb.yolov5.train_flags import ALIASES, REFUSED, SAME_FLAGS, hint_for_key

# YOLOv5's train.py parse_opt, at the tags v5.0 (April 2021) and v7.0 (November 2022).
V5_0_FLAGS = ["--weights", "--cfg", "--data", "--hyp", "--epochs", "--batch-size", "--img-size", "--rect", "--resume",
              "--nosave", "--notest", "--noautoanchor", "--evolve", "--bucket", "--cache-images", "--image-weights",
              "--device", "--multi-scale", "--single-cls", "--adam", "--sync-bn", "--local_rank", "--workers",
              "--project", "--entity", "--name", "--exist-ok", "--quad", "--linear-lr", "--label-smoothing",
              "--upload_dataset", "--bbox_interval", "--save_period", "--artifact_alias"]
V7_0_FLAGS = ["--weights", "--cfg", "--data", "--hyp", "--epochs", "--batch-size", "--imgsz", "--img", "--img-size",
              "--rect", "--resume", "--nosave", "--noval", "--noautoanchor", "--noplots", "--evolve", "--bucket",
              "--cache", "--image-weights", "--device", "--multi-scale", "--single-cls", "--optimizer", "--sync-bn",
              "--workers", "--project", "--name", "--exist-ok", "--quad", "--cos-lr", "--label-smoothing",
              "--patience", "--freeze", "--save-period", "--seed", "--local_rank", "--entity", "--upload_dataset",
              "--bbox_interval", "--artifact_alias"]


def parse(argv):
    return options_from_args(build_parser().parse_args(argv))


@pytest.mark.parametrize("flag", sorted(set(V5_0_FLAGS + V7_0_FLAGS)))
def test_every_yolov5_flag_is_ours_an_alias_or_refused(flag):
    aliased = {f for alias in ALIASES for f in alias.flags}
    refused = {f for entry in REFUSED for f in entry.flags}
    assert (flag in SAME_FLAGS) + (flag in aliased) + (flag in refused) == 1
    assert flag in build_parser()._option_string_actions  # the parser knows it, so it never reads as key=value


def test_boolean_and_value_flags_become_the_settings_that_do_the_same():
    assert parse(["--rect", "--noval", "--nosave", "--noautoanchor", "--noplots", "--cache", "--single-cls",
                  "--multi-scale", "--optimizer", "Adam", "--img-size", "640", "640", "--patience", "100",
                  "--freeze", "10", "--save-period", "1", "--label-smoothing", "0.1"]) == {
        "rect": True, "val": False, "save": False, "autoanchor": False, "plots": False, "cache": "ram",
        "single_cls": True, "multi_scale": 0.5, "optimizer": "Adam", "imgsz": 640, "patience": 100, "freeze": 10,
        "save_period": 1, "label_smoothing_eps": 0.1}
    assert parse(["--notest", "--cache-images", "--adam", "--freeze", "0", "1", "2", "--save_period", "3"]) == {
        "val": False, "cache": "ram", "optimizer": "Adam", "freeze": [0, 1, 2], "save_period": 3}
    assert parse(["--cache", "disk"]) == {"cache": "disk"}
    # v5.0's --linear-lr and v7.0's --cos-lr choose ultralytics' own schedule, which CAWB would replace
    assert parse(["--linear-lr"]) == {"scheduler": "cos", "cos_lr": False}
    assert parse(["--cos-lr"]) == {"scheduler": "cos", "cos_lr": True}


def test_a_flag_taking_several_values_never_takes_a_key_value_setting():
    assert parse(["--img-size", "640", "640", "amp=False", "--freeze", "0", "1", "lr0=0.02", "--cawb-steps", "30", "80",
                  "cache=ram"]) == {"imgsz": 640, "freeze": [0, 1], "cawb_steps": [30, 80], "amp": False,
                                    "lr0": 0.02, "cache": "ram"}
    assert parse(["--img", "320", "amp=False"]) == {"imgsz": 320, "amp": False}  # the README's example
    assert parse(["--name", "lr=0.1", "--epochs", "3"]) == {"name": "lr=0.1", "epochs": 3}  # a one-value flag's value


def test_the_aliases_settings_pass_ultralytics_own_checks():
    options = parse(["--rect", "--noval", "--nosave", "--noautoanchor", "--noplots", "--cache", "--single-cls",
                     "--multi-scale", "--adam", "--patience", "5", "--freeze", "1", "2", "--save-period", "1",
                     "--label-smoothing", "0.1", "--cos-lr"])
    options.pop("scheduler")
    assert validate_hyp(options, source="command line") == options


@pytest.mark.parametrize("argv,message", [
    (["--adam", "--optimizer", "SGD"], "--adam and --optimizer contradict each other (both set optimizer)"),
    (["--cos-lr", "--linear-lr"], "--cos-lr and --linear-lr contradict each other (both set cos_lr)"),
    (["--linear-lr", "--cawb-steps", "3"], "--linear-lr (ultralytics' own schedule instead of CAWB) contradicts "
                                           "--cawb-steps"),
    (["--linear-lr", "--scheduler", "cawb"], "--linear-lr contradicts --scheduler cawb (it sets scheduler cos)"),
    (["--noval", "val=True"], "val is given twice: as a flag and as val=..."),
    (["--img-size", "640", "512"], "--img-size 640 512: ultralytics trains and validates at one size"),
])
def test_contradicting_flags_are_refused_naming_them(argv, message):
    with pytest.raises(HypError) as error:
        parse(argv)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("argv,instead", [
    (["--evolve"], "cawb-tune"), (["--evolve", "300"], "cawb-tune"), (["--image-weights"], "leave it out"),
    (["--quad"], "leave it out"), (["--sync-bn", "--device", "0,1"], "SyncBatchNorm"),
    (["--bucket", "gs://b"], "from disk only"), (["--local_rank", "0"], "--device 0,1"),
    (["--entity", "me"], "wandb=True"), (["--upload_dataset"], "wandb=True"),
])
def test_refused_flags_stop_in_one_line_naming_the_flag_and_what_to_do(argv, instead, capsys, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {argv[0]}: ") and instead in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_help_says_what_each_alias_sets():
    help_text = " ".join(build_parser().format_help().split())
    for expected in ("--noval, --notest validate only the final epoch (v5.0: --notest): val=False",
                     "--nosave save only the final checkpoint: save=False", "--cache [ram|disk]",
                     "--linear-lr linear lr decay: ultralytics' linear schedule instead of CAWB (v5.0): "
                     "--scheduler cos cos_lr=False", "--evolve, --bucket, --image-weights, --quad, --sync-bn"):
        assert expected in help_text


@pytest.mark.parametrize("key,hint", [
    ("image_weights", "YOLOv5's --image-weights: ultralytics has no image-weighted sampling"),
    ("evolve", "YOLOv5's --evolve: hyperparameter evolution is cawb-tune's job"),
    ("linear_lr", "YOLOv5's --linear-lr: give --scheduler cos cos_lr=False"),
    ("noval", "YOLOv5's --noval: give val=False"), ("notest", "YOLOv5's --notest: give val=False"),
    ("label_smoothing", "YOLOv5's --label-smoothing: give label_smoothing_eps=EPS"),
    ("batch_size", "YOLOv5's --batch-size: give batch=N"),
])
def test_key_value_named_after_a_yolov5_flag_says_what_it_is_here(key, hint):
    assert hint_for_key(key).startswith(hint)
    with pytest.raises(HypError) as error:
        validate_hyp({key: True}, source="command line")
    message = str(error.value)
    assert message.startswith(f"command line: unknown key '{key}' ({hint}") and "did you mean" not in message


def test_other_unknown_keys_still_get_the_closest_valid_one():
    assert hint_for_key("cawb_step") is None
    with pytest.raises(HypError, match=r"unknown key 'cawb_step' \(did you mean 'cawb_steps'\?\)"):
        validate_hyp({"cawb_step": [3]}, source="command line")
