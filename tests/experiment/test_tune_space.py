"""cawb/experiment/tune_space.py: restart positions and their epochs, the space file, what a trial draws."""

import random

import optuna
import pytest

from cawb.experiment.tune_space import (
    DEFAULT_SPACE,
    Range,
    build_space,
    effective_warmup,
    load_space,
    restart_epochs_from_fractions,
    spaced_fractions,
)
from cawb.training.hyp import HypError, schedule_from_hyp

optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_spaced_fractions_are_sorted_spaced_and_inside_over_many_draws():
    rng = random.Random(0)
    for _ in range(2000):
        gap = rng.choice([0.05, 0.1, 0.2])
        n = rng.randint(0, min(3, int(1 / gap) - 2))
        fractions = spaced_fractions([rng.random() for _ in range(n)], gap)
        assert len(fractions) == n
        assert fractions == sorted(fractions)
        assert all(b - a >= gap - 1e-12 for a, b in zip(fractions, fractions[1:]))
        if fractions:
            assert fractions[0] >= gap - 1e-12 and fractions[-1] <= 1 - gap + 1e-12


def test_spaced_fractions_reach_both_ends_and_refuse_what_cannot_fit():
    assert spaced_fractions([0.0, 0.0], 0.1) == pytest.approx([0.1, 0.2])
    assert spaced_fractions([1.0, 1.0], 0.1) == pytest.approx([0.8, 0.9])
    with pytest.raises(ValueError, match="do not fit"):
        spaced_fractions([0.5] * 3, 0.25)


def test_restart_epochs_are_integers_after_warmup_before_the_end_and_kept_by_the_schedule():
    rng = random.Random(1)
    for _ in range(2000):
        epochs = rng.randint(1, 300)
        warmup = effective_warmup(rng.choice([0.0, 0.5, 1.0, 3.0, 7.5]), epochs)
        n = rng.randint(0, 3)
        fractions = spaced_fractions([rng.random() for _ in range(n)], 0.05)
        steps = restart_epochs_from_fractions(fractions, epochs, warmup)
        assert all(isinstance(s, int) for s in steps)
        assert steps == sorted(set(steps)) and len(steps) <= n
        assert all(warmup < s < epochs - 1 for s in steps)
        if 0.05 * (epochs - warmup) >= 1 and steps:  # 5% is at least an epoch: no two restarts merge
            assert len(steps) == n
        schedule = schedule_from_hyp({"cawb": True, "warmup_epochs": warmup, "cawb_steps": steps}, epochs=epochs)
        assert list(schedule.restart_epochs) == steps and not schedule.dropped_restart_epochs


def test_restart_epochs_follow_the_fractions_of_post_warmup_training():
    # warmup 3 of 103 epochs: 100 epochs after warmup, so fraction p lands on epoch 3 + 100 p.
    assert restart_epochs_from_fractions([0.2, 0.55], 103, 3.0) == [23, 58]
    assert restart_epochs_from_fractions([0.01, 0.999], 103, 3.0) == [4, 101]  # moved inside (W, E - 1)
    assert restart_epochs_from_fractions([0.5], 3, 1.0) == []  # 2 would show at epoch 3, after the run
    assert restart_epochs_from_fractions([0.5], 4, 1.0) == [2]  # the one epoch that can hold a restart
    assert effective_warmup(3.0, 2) == 1  # as ultralytics: warmup never takes the last epoch
    assert effective_warmup(None, 100) == 3.0  # a hyp without warmup_epochs: ultralytics' default


def draw(space, base=None, epochs=100, seed=0):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    return trial, space.suggest(trial, base or {"warmup_epochs": 3.0}, epochs)


def test_default_space_draws_a_variable_number_of_restarts_and_the_cawb_values():
    seen = set()
    for seed in range(40):
        trial, drawn = draw(build_space(), seed=seed)
        n = trial.params["n_restarts"]
        seen.add(n)
        assert sorted(k for k in trial.params if k.startswith("restart_")) == [f"restart_{i}" for i in range(1, n + 1)]
        assert len(drawn.hyp["cawb_steps"]) == n and len(drawn.restart_fractions) == n
        assert drawn.hyp["cawb"] is True and drawn.hyp["cawb_lf"] in ("cos", "linear")
        assert 0.3 <= drawn.hyp["cawb_step_scale"] <= 1.2 and 1 <= drawn.hyp["cawb_epoch_scale"] <= 8
        assert 0 <= drawn.hyp["cawb_lf_min"] <= 0.6
    assert seen == {0, 1, 2, 3}


def test_space_file_overrides_bounds_fixes_values_and_adds_ultralytics_keys(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("n_restarts: {low: 1, high: 2}\ncawb_lf: cos\ncawb_step_scale: {low: 0.5, high: 0.6}\n"
                    "lr0: {low: 0.001, high: 0.02, log: true}\nclose_mosaic: {low: 0, high: 5}\n")
    space = load_space(path)
    assert space.entries["cawb_epoch_scale"] == DEFAULT_SPACE["cawb_epoch_scale"]  # untouched entries stay
    for seed in range(10):
        trial, drawn = draw(space, seed=seed)
        assert "cawb_lf" not in trial.params and drawn.hyp["cawb_lf"] == "cos"
        assert 1 <= len(drawn.hyp["cawb_steps"]) <= 2 and 0.5 <= drawn.hyp["cawb_step_scale"] <= 0.6
        assert 0.001 <= drawn.hyp["lr0"] <= 0.02 and isinstance(drawn.hyp["close_mosaic"], int)


def test_fixed_restart_epochs_take_the_restarts_out_of_the_search(tmp_path):
    trial, drawn = draw(build_space({"cawb_steps": [30, 80]}))
    assert drawn.hyp["cawb_steps"] == [30, 80] and drawn.restart_fractions is None
    assert not any(name.startswith(("n_restarts", "restart_")) for name in trial.params)


def test_searched_warmup_places_the_restarts_after_the_trials_own_warmup():
    space = build_space({"warmup_epochs": {"low": 5, "high": 9}, "n_restarts": 3})
    for seed in range(20):
        trial, drawn = draw(space, epochs=20, seed=seed)
        assert all(s > trial.params["warmup_epochs"] for s in drawn.hyp["cawb_steps"])


def test_restart_limit_caps_the_count_for_short_runs():
    assert build_space().with_restart_limit(1).entries["n_restarts"] == Range(0, 1, integer=True)
    assert build_space().with_restart_limit(0).entries["n_restarts"] == 0


@pytest.mark.parametrize("text,message", [
    ("cawb_step_scal: {low: 0.1, high: 1}", "unknown key 'cawb_step_scal' (did you mean 'cawb_step_scale'?)"),
    ("cawb_step_scale: {low: 1.0, high: 0.5}", "cawb_step_scale: low 1.0 > high 0.5"),
    ("cawb_step_scale: {low: -1, high: 0.5}", "cawb_step_scale=-1 is invalid"),
    ("cawb_lf_min: {low: 0, high: 1.5}", "cawb_lf_min=1.5 is invalid"),
    ("cawb_lf: {choices: [cos, nowhere:decay]}", "cannot import module 'nowhere'"),
    ("cawb_lf: {low: 0, high: 1}", "cawb_lf is not numeric"),
    ("n_restarts: {low: 0, high: 11}", "n_restarts=11 is invalid"),
    ("n_restarts: {low: 0.5, high: 2}", "low=0.5 is invalid: it must be an integer"),
    ("restart_min_gap: 0.3", "do not fit"),
    ("lr0: {low: abc, high: 0.1}", "low='abc' is invalid"),
    ("lr0: {low: 0, high: 0.1, log: true}", "a log range needs low > 0"),
    ("mosaic: {low: 0.5, high: 2}", "mosaic=2 is invalid: it must be a number in [0, 1]"),
    ("lr0: {low: -0.1, high: 0.1}", "lr0=-0.1 is invalid"),
    ("lr0: {low: 0.1, hihg: 0.2}", "a range is {low: L, high: H}"),
    ("lr0: [0.001, 0.01]", "is ambiguous"),
    ("epochs: {low: 10, high: 20}", "epochs is a run setting"),
    ("cawb: false", "cawb cannot be searched"),
    ("cawb_steps: [4, 11]\nn_restarts: 2", "contradicts"),
    ("cawb_steps: {low: 1, high: 3}", "cawb_steps can only be fixed"),
    ("- lr0", "must be a mapping"),
    ("", "is empty"),
    ("lr0: [0.1", "is not valid YAML"),
])
def test_bad_space_files_are_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(HypError) as error:
        load_space(path)
    assert message in str(error.value) and str(error.value).startswith(f"--space {path}")
    assert "\n" not in str(error.value)


def test_space_paths_that_are_not_files(tmp_path):
    with pytest.raises(HypError, match="no such file"):
        load_space(tmp_path / "missing.yaml")
    with pytest.raises(HypError, match="is a directory"):
        load_space(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(HypError, match="not a text file"):
        load_space(binary)
