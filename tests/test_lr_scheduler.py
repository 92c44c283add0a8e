"""cawb/lr_scheduler.py: CosineAnnealingWarmbootingLR on real torch optimizers."""

import math

import pytest
import torch

from cawb import CawbConfigError, CawbSchedule, CosineAnnealingWarmbootingLR

SETTINGS = dict(epochs=60, steps=[15, 35], step_scale=0.7, epoch_scale=2.0, lf_min=0.2, warmup_epochs=2)


def make_optimizer(kind=torch.optim.SGD, base_lrs=(0.1, 0.02, 0.005)):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    groups = [{"params": list(layer.parameters()), "lr": lr} for layer, lr in zip(model, base_lrs)]
    return kind(groups, lr=base_lrs[0])


def schedule_for(settings):
    return CawbSchedule(
        epochs=settings["epochs"],
        warmup_epochs=settings["warmup_epochs"],
        restart_epochs=settings["steps"],
        step_scale=settings["step_scale"],
        epoch_scale=settings["epoch_scale"],
        lf_min=settings["lf_min"],
    )


def lrs_over(scheduler, steps):
    history = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        history.append(scheduler.get_last_lr())
    return history


def test_is_a_torch_lr_scheduler():
    assert issubclass(CosineAnnealingWarmbootingLR, torch.optim.lr_scheduler.LRScheduler)


@pytest.mark.parametrize("kind", [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop])
def test_pytorch_convention_every_group_keeps_its_base_lr(kind):
    optimizer = make_optimizer(kind)
    scheduler = CosineAnnealingWarmbootingLR(optimizer, **SETTINGS)
    schedule = schedule_for(SETTINGS)
    for step, lrs in enumerate(lrs_over(scheduler, 70)):
        assert lrs == pytest.approx([base * schedule(step) for base in (0.1, 0.02, 0.005)], rel=1e-12)
    assert [group["lr"] for group in optimizer.param_groups] == scheduler.get_last_lr()


def test_resume_by_state_dict_equals_an_uninterrupted_run(tmp_path):
    uninterrupted = lrs_over(CosineAnnealingWarmbootingLR(make_optimizer(), **SETTINGS), 60)

    first = CosineAnnealingWarmbootingLR(make_optimizer(), **SETTINGS)
    before = lrs_over(first, 25)
    torch.save({"optimizer": first.optimizer.state_dict(), "scheduler": first.state_dict()}, tmp_path / "ckpt.pt")

    checkpoint = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    optimizer = make_optimizer()
    second = CosineAnnealingWarmbootingLR(optimizer, **SETTINGS)
    optimizer.load_state_dict(checkpoint["optimizer"])
    second.load_state_dict(checkpoint["scheduler"])
    after = lrs_over(second, 35)
    assert before + after[1:] == uninterrupted


def test_resume_by_last_epoch_equals_an_uninterrupted_run():
    uninterrupted = lrs_over(CosineAnnealingWarmbootingLR(make_optimizer(), **SETTINGS), 60)
    resumed = CosineAnnealingWarmbootingLR(make_optimizer(), **SETTINGS, last_epoch=24)  # fresh optimizer
    assert lrs_over(resumed, 35) == uninterrupted[25:]


def test_state_dict_with_a_custom_lf_is_saveable_and_needs_the_callable_back(tmp_path):
    def decay(x, period):
        return 1 - 0.9 * x / period

    scheduler = CosineAnnealingWarmbootingLR(make_optimizer(), epochs=10, lf=decay)
    lrs_over(scheduler, 4)
    torch.save(scheduler.state_dict(), tmp_path / "sched.pt")  # a lambda/closure in the state would fail here
    state = torch.load(tmp_path / "sched.pt", weights_only=False)

    again = CosineAnnealingWarmbootingLR(make_optimizer(), epochs=10, lf=decay)
    again.load_state_dict(state)
    assert again.last_epoch == 4 and again.schedule.lf is decay
    with pytest.raises(CawbConfigError, match="custom lf"):
        CosineAnnealingWarmbootingLR(make_optimizer(), epochs=10).load_state_dict(state)


def test_state_dict_restores_the_saved_settings():
    saved = CosineAnnealingWarmbootingLR(make_optimizer(), **SETTINGS)
    other = CosineAnnealingWarmbootingLR(make_optimizer(), epochs=5)
    other.load_state_dict(saved.state_dict())
    assert other.schedule == saved.schedule


def test_reference_keyword_names_and_step_batch_warmup():
    steps = [40, 15]
    optimizer = make_optimizer()
    scheduler = CosineAnnealingWarmbootingLR(
        optimizer, epochs=60, eta_min=0.2, steps=steps, step_scale=0.7, lf=None, batchs=5, warmup_epoch=2, epoch_scale=4.0
    )
    assert steps == [40, 15]  # the reference sorted the caller's list in place
    assert scheduler.schedule == CawbSchedule(
        epochs=60, warmup_epochs=2, restart_epochs=[15, 40], step_scale=0.7, epoch_scale=4.0, lf="cos", lf_min=0.2
    )
    ramp = []
    for epoch in range(3):
        for _ in range(5):
            ramp.append(scheduler.step_batch())
            optimizer.step()
        scheduler.step()
    # Linear from 0 over warmup_epoch * batchs = 10 iterations, then nothing.
    assert ramp[:10] == pytest.approx([0.1 * i / 10 for i in range(10)])
    assert ramp[10:] == [None] * 5
    assert scheduler.get_last_lr()[0] == pytest.approx(0.1 * scheduler.schedule(3))


def test_the_reference_positional_call_and_step_returning_the_lr():
    # (optimizer, epochs, eta_min, steps, step_scale, lf, batchs, warmup_epoch, epoch_scale), the reference's order
    optimizer = make_optimizer()
    scheduler = CosineAnnealingWarmbootingLR(optimizer, 60, 0.2, [15, 40], 0.7, None, 5, 2, 4.0)
    assert scheduler.schedule == CawbSchedule(
        epochs=60, warmup_epochs=2, restart_epochs=[15, 40], step_scale=0.7, epoch_scale=4.0, lf="cos", lf_min=0.2
    )
    assert scheduler.batches_per_epoch == 5
    for epoch in range(1, 20):
        optimizer.step()
        lr = scheduler.step()  # the reference returned the first group's new lr
        assert lr == optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * scheduler.schedule(epoch))
    optimizer.step()
    assert scheduler.step(30) == optimizer.param_groups[0]["lr"]  # torch's explicit position too


@pytest.mark.parametrize("kwargs,named", [
    (dict(epochs=10, steps=[3, -1]), "steps=[3, -1] is invalid: it must be a list of epoch numbers >= 0"),
    (dict(epochs=10, steps=["a"]), "steps='a' is invalid"),
    (dict(epochs=10, eta_min=2), "eta_min=2 is invalid: it must be in [0, 1]"),
    (dict(epochs=10, lf_min=2), "lf_min=2 is invalid"),
    (dict(epochs=10, warmup_epoch=10), "warmup_epoch=10 is invalid"),
    (dict(epochs=10, warmup_epochs=-1), "warmup_epochs=-1 is invalid"),
])
def test_errors_name_the_argument_as_the_caller_gave_it(kwargs, named):
    with pytest.raises(CawbConfigError) as error:
        CosineAnnealingWarmbootingLR(make_optimizer(), **kwargs)
    assert str(error.value).startswith(named)


def test_aliases_that_disagree_are_refused():
    with pytest.raises(CawbConfigError, match="eta_min"):
        CosineAnnealingWarmbootingLR(make_optimizer(), epochs=10, lf_min=0.1, eta_min=0.2)
    with pytest.raises(CawbConfigError, match="warmup_epoch"):
        CosineAnnealingWarmbootingLR(make_optimizer(), epochs=10, warmup_epochs=1, warmup_epoch=2)


def test_no_one_epoch_lag_unlike_the_reference():
    # The reference set, after epoch e, the lr of epoch e and so trained epoch e + 1 at f(e). Here the lr the
    # optimizer holds while epoch e runs is f(e), whichever epoch we look at.
    scheduler = CosineAnnealingWarmbootingLR(make_optimizer(), epochs=20, steps=[8], step_scale=0.5, lf_min=0.0)
    for epoch in range(20):
        assert scheduler.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * scheduler.schedule(epoch))
        scheduler.optimizer.step()
        scheduler.step()


def test_per_iteration_stepping_with_fractional_epochs_and_warmup_ramp():
    optimizer = make_optimizer()
    scheduler = CosineAnnealingWarmbootingLR(optimizer, **SETTINGS, steps_per_epoch=4)
    schedule = schedule_for(SETTINGS)
    for iteration, lrs in enumerate(lrs_over(scheduler, 60 * 4)):
        epoch = iteration / 4
        ramp = min(epoch / SETTINGS["warmup_epochs"], 1.0)
        assert lrs[0] == pytest.approx(0.1 * schedule(epoch) * ramp, rel=1e-12, abs=1e-15)
    with pytest.raises(RuntimeError, match="step_batch"):
        scheduler.step_batch()


def test_matches_torch_cosine_annealing_where_the_formulas_coincide():
    base, eta_min, epochs = 0.1, 0.004, 40
    ours = CosineAnnealingWarmbootingLR(make_optimizer(base_lrs=(base,)), epochs=epochs, lf_min=eta_min / base)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(make_optimizer(base_lrs=(base,)), T_max=epochs, eta_min=eta_min)
    for step in range(epochs + 1):
        assert ours.get_last_lr()[0] == pytest.approx(reference.get_last_lr()[0], rel=1e-9)
        for scheduler in (ours, reference):
            scheduler.optimizer.step()
            scheduler.step()


@pytest.mark.parametrize(
    "kwargs,parameter",
    [
        (dict(epochs=None), "epochs"),
        (dict(epochs=10, steps_per_epoch=0), "steps_per_epoch"),
        (dict(epochs=10, batchs=-1), "batchs"),
        (dict(epochs=10, last_epoch=-2), "last_epoch"),
        (dict(epochs=10, step_scale=-1), "step_scale"),
        (dict(epochs=10, schedule="cos"), "schedule"),
        (dict(epochs=10, batchs=3, steps_per_epoch=3), "batchs"),
    ],
)
def test_invalid_arguments_fail_at_construction(kwargs, parameter):
    with pytest.raises(CawbConfigError, match=parameter):
        CosineAnnealingWarmbootingLR(make_optimizer(), **kwargs)


def test_a_custom_lf_returning_nan_fails_at_construction():
    def nan_decay(x, period):
        return math.nan

    with pytest.raises(CawbConfigError, match="nan_decay"):
        CosineAnnealingWarmbootingLR(make_optimizer(), epochs=10, lf=nan_decay)


def test_ready_schedule_argument():
    schedule = schedule_for(SETTINGS)
    scheduler = CosineAnnealingWarmbootingLR(make_optimizer(), schedule=schedule)
    assert scheduler.schedule is schedule and lrs_over(scheduler, 3)[3][0] == pytest.approx(0.1 * schedule(3))


def test_tensor_learning_rates_are_updated_in_place():
    model = torch.nn.Linear(2, 1)
    lrs = [torch.tensor(0.1), torch.tensor(0.02)]
    optimizer = torch.optim.Adam([{"params": [model.weight], "lr": lrs[0]}, {"params": [model.bias], "lr": lrs[1]}],
                                 foreach=False)
    scheduler = CosineAnnealingWarmbootingLR(optimizer, epochs=10, steps=[4])
    history = lrs_over(scheduler, 5)
    assert optimizer.param_groups[0]["lr"] is lrs[0]  # same tensor, filled in place
    assert float(lrs[0]) == pytest.approx(0.1 * scheduler.schedule(5), rel=1e-6)
    assert all(isinstance(lr, torch.Tensor) for lr in history[-1])
    assert history[-1][0] is not lrs[0]  # get_last_lr() returns copies


def test_the_plainest_recipe_torch_lambda_lr_over_a_schedule_gives_the_same_lrs():
    schedule = schedule_for(SETTINGS)
    plain = torch.optim.lr_scheduler.LambdaLR(make_optimizer(), schedule)
    ours = CosineAnnealingWarmbootingLR(make_optimizer(), schedule=schedule)
    flat = lambda history: [lr for lrs in history for lr in lrs]  # noqa: E731
    assert flat(lrs_over(plain, 60)) == pytest.approx(flat(lrs_over(ours, 60)), rel=1e-12)


def test_help_shows_every_default_as_a_value():
    import inspect

    signature = inspect.signature(CosineAnnealingWarmbootingLR.__init__)
    assert "<object" not in str(signature)
    defaults = {name: parameter.default for name, parameter in signature.parameters.items()}
    assert (defaults["lf_min"], defaults["step_scale"], defaults["epoch_scale"]) == (0.05, 0.8, 1.0)  # the schedule's
    assert defaults["eta_min"] is None and defaults["warmup_epoch"] is None  # the reference's names: "not given"
