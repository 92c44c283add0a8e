"""cawb/schedule.py: the CAWB multiplier, point by point against the specification."""

import math
import subprocess
import sys

import pytest

from cawb.schedule import CawbConfigError, CawbSchedule, restart_is_made, scale_restart_epochs

# The article's published curve: 150 epochs, restarts at 30 and 80, step_scale 0.7, epoch_scale 4 (stretch),
# lf = 0.65 * cos + 0.35, lr 0.1, no warmup. Values as read off the article's figure.
ARTICLE = dict(epochs=150, restart_epochs=[30, 80], step_scale=0.7, epoch_scale=4.0, lf="cos", lf_min=0.35)
ARTICLE_LR = {0: 0.1, 30: 0.0905, 31: 0.070, 80: 0.0633, 81: 0.049, 149: 0.0172}


def spec_cos(x, period, m):
    return (1 + math.cos(math.pi * x / period)) / 2 * (1 - m) + m


def spec_linear(x, period, m):
    return (1 - x / period) * (1 - m) + m


@pytest.mark.parametrize("epoch,lr", sorted(ARTICLE_LR.items()))
def test_article_figure_values_follow_stretch(epoch, lr):
    assert 0.1 * CawbSchedule(**ARTICLE)(epoch) == pytest.approx(lr, abs=6e-4)


def test_extend_mode_does_not_give_the_article_figure():
    extend = CawbSchedule(**ARTICLE, epoch_scale_mode="extend")
    assert 0.1 * extend(30) < ARTICLE_LR[30] - 0.02  # period 34 instead of 120: nearly annealed to the floor


def test_extend_mode_period_is_length_plus_scale():
    schedule = CawbSchedule(epochs=100, restart_epochs=[40], epoch_scale=5, epoch_scale_mode="extend", lf_min=0.1)
    assert schedule.periods == (45.0, 60.0)
    assert schedule(20) == pytest.approx(spec_cos(20, 45, 0.1))
    assert schedule(70) == pytest.approx(0.8 * spec_cos(30, 60, 0.1))


def test_stretch_mode_period_is_length_times_scale_and_final_cycle_is_plain():
    schedule = CawbSchedule(epochs=100, warmup_epochs=10, restart_epochs=[40, 70], epoch_scale=2.0)
    assert schedule.boundaries == (10.0, 40.0, 70.0, 100.0)
    assert schedule.periods == (60.0, 60.0, 30.0)  # the last one is never scaled
    assert schedule(100) == pytest.approx(0.8**2 * 0.05)  # the final cycle reaches the floor


def test_boundaries_are_inclusive_on_the_right():
    schedule = CawbSchedule(epochs=50, restart_epochs=[20], step_scale=0.5, lf_min=0.0)
    assert schedule(20) == pytest.approx(spec_cos(20, 20, 0.0))  # == 0: the end of the first cycle
    assert schedule(20) == pytest.approx(0.0, abs=1e-12)
    assert schedule(20.001) == pytest.approx(0.5 * spec_cos(0.001, 30, 0.0))  # just after: the restart


def test_no_restarts_is_one_plain_cosine_from_warmup_to_end():
    schedule = CawbSchedule(epochs=60, warmup_epochs=5, lf_min=0.2)
    for epoch in (5, 6.5, 17, 33, 59, 60):
        assert schedule(epoch) == pytest.approx(spec_cos(epoch - 5, 55, 0.2))


def test_clamps_before_warmup_and_after_the_end():
    schedule = CawbSchedule(epochs=30, warmup_epochs=3, restart_epochs=[10], lf_min=0.1)
    assert [schedule(e) for e in (-5, 0, 1.5, 3)] == [1.0, 1.0, 1.0, 1.0]  # warmup ramps toward the first peak
    assert schedule(31) == schedule(1000) == schedule(30)


def test_linear_builtin():
    schedule = CawbSchedule(epochs=40, restart_epochs=[10], step_scale=0.5, epoch_scale=2, lf="linear", lf_min=0.25)
    assert schedule(5) == pytest.approx(spec_linear(5, 20, 0.25))
    assert schedule(25) == pytest.approx(0.5 * spec_linear(15, 30, 0.25))


def test_custom_callable_receives_offset_and_period():
    calls = []

    def decay(x, period):
        calls.append((x, period))
        return 1.0 - 0.5 * x / period

    schedule = CawbSchedule(epochs=20, restart_epochs=[8], step_scale=0.5, epoch_scale=1.5, lf=decay, lf_min=0.9)
    assert schedule(4) == pytest.approx(1.0 - 0.5 * 4 / 12)  # lf_min is unused with a callable
    assert schedule(14) == pytest.approx(0.5 * (1.0 - 0.5 * 6 / 12))
    assert calls == [(4.0, 12.0), (6.0, 12.0)]
    assert schedule.config()["lf"] is None and schedule.custom_lf


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, None, "x"])
def test_custom_lf_with_a_bad_value_is_caught_naming_the_function(bad):
    def broken_decay(x, period):
        return bad

    schedule = CawbSchedule(epochs=10, lf=broken_decay)
    with pytest.raises(CawbConfigError, match="broken_decay"):
        schedule(0)


def test_restart_epochs_are_a_sorted_deduplicated_copy_within_warmup_and_end():
    steps = [80, 30, 30, 2, 149, 148, 150, 200]
    schedule = CawbSchedule(epochs=150, warmup_epochs=3, restart_epochs=steps)
    assert steps == [80, 30, 30, 2, 149, 148, 150, 200]  # the caller's list is untouched
    assert schedule.restart_epochs == (30.0, 80.0, 148.0)  # 148 shows at epoch 149, the last one trained
    assert schedule.dropped_restart_epochs == (2.0, 149.0, 150.0, 200.0)


def epoch_stepped_lrs(schedule):
    """The lr of each trained epoch 0 .. E-1 as torch's LambdaLR steps it once per epoch (base lr 1)."""
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    lrs = []
    for _ in range(schedule.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("restart,made", [(3, True), (3.99, True), (4, False), (4.5, False), (2, False), (2.5, True)])
def test_a_restart_counts_only_when_a_trained_epoch_after_it_shows_it(restart, made):
    # 5 epochs (0..4 trained), warmup 2: s is first seen at floor(s) + 1, which must be <= 4, so s < 4; and s > 2.
    schedule = CawbSchedule(epochs=5, warmup_epochs=2, restart_epochs=[restart], step_scale=0.9, lf_min=0.1)
    assert restart_is_made(restart, 2, 5) is made
    assert schedule.restart_epochs == ((restart,) if made else ())
    assert schedule.dropped_restart_epochs == (() if made else (restart,))
    lrs = epoch_stepped_lrs(schedule)
    without = epoch_stepped_lrs(CawbSchedule(epochs=5, warmup_epochs=2, step_scale=0.9, lf_min=0.1))
    if made:  # the first trained epoch after the restart follows the new cycle
        shown = math.floor(restart) + 1
        assert lrs[shown] > without[shown]
        if restart >= 3:  # the cycle it ends was seen decaying (2.5: only its start, epoch 2), so the lr jumps up
            assert lrs[shown] > lrs[shown - 1]
    else:  # a dropped restart shapes nothing: the curve is the one without it
        assert lrs == without


def test_a_restart_in_the_last_epoch_is_dropped_whatever_the_stepping():
    import torch

    from cawb.lr_scheduler import CosineAnnealingWarmbootingLR

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    # per batch, epoch 4.5 would be trained; the schedule keeps one rule so the hyp means the same in both modes
    scheduler = CosineAnnealingWarmbootingLR(optimizer, epochs=5, steps=[3, 4.5], steps_per_epoch=4)
    assert scheduler.schedule.restart_epochs == (3.0,) and scheduler.schedule.dropped_restart_epochs == (4.5,)


def test_step_scale_multiplies_each_cycle_peak():
    schedule = CawbSchedule(epochs=40, restart_epochs=[10, 20, 30], step_scale=1.5, lf_min=0.0)
    peaks = [schedule(start + 1e-9) for start in (0, 10, 20, 30)]
    assert peaks == pytest.approx([1.0, 1.5, 2.25, 3.375])


def test_fractional_epochs_for_per_iteration_use():
    schedule = CawbSchedule(epochs=10, lf_min=0.0)
    assert schedule(2.5) == pytest.approx(spec_cos(2.5, 10, 0.0))


def test_nan_epoch_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        CawbSchedule(epochs=10)(float("nan"))


@pytest.mark.parametrize(
    "kwargs,parameter",
    [
        (dict(epochs=0), "epochs"),
        (dict(epochs=2.5), "epochs"),
        (dict(epochs=True), "epochs"),
        (dict(epochs=10, warmup_epochs=10), "warmup_epochs"),
        (dict(epochs=10, warmup_epochs=-1), "warmup_epochs"),
        (dict(epochs=10, restart_epochs=5), "restart_epochs"),
        (dict(epochs=10, restart_epochs=["a"]), "restart_epochs"),
        (dict(epochs=10, restart_epochs=[float("nan")]), "restart_epochs"),
        (dict(epochs=10, restart_epochs=[3, -1]), "restart_epochs"),
        (dict(epochs=10, step_scale=0), "step_scale"),
        (dict(epochs=10, step_scale=float("inf")), "step_scale"),
        (dict(epochs=10, epoch_scale=-2), "epoch_scale"),
        (dict(epochs=10, epoch_scale_mode="strech"), "epoch_scale_mode"),
        (dict(epochs=10, lf="cosine"), "lf"),
        (dict(epochs=10, lf=3), "lf"),
        (dict(epochs=10, lf_min=1.5), "lf_min"),
        (dict(epochs=10, lf_min=-0.1), "lf_min"),
    ],
)
def test_invalid_settings_fail_at_construction_naming_parameter_and_value(kwargs, parameter):
    with pytest.raises(CawbConfigError) as caught:
        CawbSchedule(**kwargs)
    assert caught.value.parameter == parameter
    message = str(caught.value)
    assert message.startswith(f"{parameter}=") and "must be" in message and "\n" not in message


def test_schedule_layer_imports_no_torch():
    code = "import sys, cawb, cawb.schedule; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scale_restart_epochs_keeps_relative_positions():
    assert scale_restart_epochs([30, 80], 150, 20) == [4, 11]  # 4.0 and 10.67: the shapes hyp files' restarts
    assert scale_restart_epochs([30, 80], 150, 150) == [30, 80]
    assert scale_restart_epochs([30, 80], 150, 300) == [60, 160]
    assert scale_restart_epochs([4, 11], 20, 3) == [1, 2]  # 0.6 and 1.65
    assert scale_restart_epochs([5, 15], 20, 2) == [1, 2]  # 0.5 and 1.5: halves go up, not to the even side
    assert scale_restart_epochs([10, 11], 100, 10) == [1]  # 1.0 and 1.1 merge
    assert scale_restart_epochs([], 150, 20) == []


@pytest.mark.parametrize(
    "args,parameter",
    [(([30], 0, 20), "from_epochs"), (([30], 150, 2.5), "to_epochs"), (([float("inf")], 150, 20), "restart_epochs"),
     ((30, 150, 20), "restart_epochs")],
)
def test_scale_restart_epochs_refuses_bad_input(args, parameter):
    with pytest.raises(CawbConfigError) as caught:
        scale_restart_epochs(*args)
    assert caught.value.parameter == parameter
