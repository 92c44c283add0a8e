"""CAWB as a PyTorch learning-rate scheduler: ``CosineAnnealingWarmbootingLR``.

The math lives in :class:`cawb.schedule.CawbSchedule`; this module only does the optimizer plumbing (base
learning rates per param group, step counting, state for resume, the reference code's batch warmup).
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from cawb.schedule import CawbConfigError, CawbSchedule, DecayFunction
from cawb.utils.checks import is_int
from cawb.utils.errors import UsageError

__all__ = ["CosineAnnealingWarmbootingLR"]


def _one_of(name: str, value: Any, default: Any, alias: str, alias_value: Any) -> tuple[Any, str]:
    """A setting the reference code names ``alias`` (None: not given) and cawb ``name`` (``default``: not given);
    returns the value and the name the caller used. Both given with different values is an error."""
    if alias_value is None:
        return value, name
    if value != default and value != alias_value:
        raise CawbConfigError(f"{name}={value!r} and {alias}={alias_value!r} are the same setting: give only one")
    return alias_value, alias


class CosineAnnealingWarmbootingLR(LRScheduler):
    r"""Cosine annealing with warm booting: restarts at chosen epochs, each with a scaled peak.

    Each param group's learning rate is its base lr times the CAWB multiplier :math:`f`
    (see :class:`cawb.schedule.CawbSchedule` for the full definition)::

        lr = base_lr * step_scale**i * lf(x, period_i)

    where ``i`` counts the restarts passed, ``x`` is the epoch's offset into the current cycle and ``period_i`` is
    the cycle's length (times ``epoch_scale`` for a non-final cycle in ``stretch`` mode, plus it in ``extend`` mode).

    PyTorch convention: right after construction the optimizer holds ``base * f(0)``; after ``n`` calls of
    :meth:`step`, ``base * f(n)``. Call :meth:`step` once per epoch, after the epoch. Pass ``steps_per_epoch`` to
    call it once per batch instead (per-iteration annealing, fractional epochs ``n / steps_per_epoch``).

    Args:
        optimizer: any optimizer; every param group keeps its own base lr (its ``initial_lr``).
        epochs: total epochs ``E``.
        steps: restart epochs (the seed code's ``cawb_steps``); a sorted copy with only the restarts a run makes,
            ``warmup_epochs < s < epochs - 1`` (:func:`cawb.schedule.restart_is_made`), is used, the caller's list
            is left untouched.
        step_scale: each restart multiplies the peak by this (> 0).
        epoch_scale: > 0; stretches a non-final cycle's period so it need not anneal to the bottom.
        epoch_scale_mode: ``"stretch"`` (period ``L * epoch_scale``, default; reproduces the article's curves) or
            ``"extend"`` (period ``L + epoch_scale``; what the reference code computed).
        lf: ``"cos"`` (default), ``"linear"`` or a callable ``lf(x, period) -> multiplier``.
        lf_min: floor of the built-in decays as a fraction of the cycle's peak, in [0, 1] (default 0.05).
        warmup_epochs: ``W``; the multiplier holds the first peak until ``W``. In epoch mode the linear ramp from 0
            comes from calling :meth:`step_batch` every batch (needs ``batchs``); in per-iteration mode
            (``steps_per_epoch``) :meth:`step` ramps from 0 to the first peak over the first ``W`` epochs itself.
        steps_per_epoch: batches per epoch; switches :meth:`step` to once per batch.
        last_epoch: index of the last finished step, for resuming (``-1`` to start). Constructing with
            ``last_epoch=n - 1`` gives the same learning rates as a scheduler stepped ``n`` times.
        schedule: a ready :class:`CawbSchedule` instead of the schedule arguments above.

    The plainest recipe needs no class of cawb's at all: a :class:`CawbSchedule` is a function of the epoch, so
    ``torch.optim.lr_scheduler.LambdaLR(optimizer, CawbSchedule(epochs=150, restart_epochs=[30, 80]))`` steps it
    once per epoch. This class adds per-batch stepping, the reference's warmup and its calls, and named state.

    The reference implementation's calls work unchanged: its positional order ``(optimizer, epochs, eta_min, steps,
    step_scale, lf, batchs, warmup_epoch, epoch_scale)``, its names ``eta_min`` (= ``lf_min``), ``warmup_epoch``
    (= ``warmup_epochs``), ``batchs`` (batches per epoch for :meth:`step_batch`), ``lf=None`` (= ``"cos"``), and
    :meth:`step` returning the first group's lr. Unlike the reference, :meth:`step` sets the learning rate of the
    epoch about to start, not of the one just finished: the reference trained epoch ``e`` at ``f(e - 1)`` (cawb's
    trainer reproduces that cadence with ``lr_epoch_lag: true``, the default for classic YOLOv5 models).

    Raises:
        CawbConfigError: (a ValueError) for any invalid argument, at construction, naming it as the caller did
            (``steps``, ``eta_min``, ...).

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> sched = CosineAnnealingWarmbootingLR(opt, epochs=150, steps=[30, 80], step_scale=0.7,
        ...                                      epoch_scale=4.0, lf_min=0.35)
        >>> for epoch in range(150):
        ...     train_one_epoch(model, opt)
        ...     sched.step()
    """

    def __init__(
        self,
        optimizer: Optimizer,
        epochs: int | None = None,
        eta_min: float | None = None,
        steps: Sequence[float] = (),
        step_scale: float = CawbSchedule.step_scale,
        lf: str | DecayFunction | None = CawbSchedule.lf,
        batchs: int = 0,
        warmup_epoch: float | None = None,
        epoch_scale: float = CawbSchedule.epoch_scale,
        *,
        lf_min: float = CawbSchedule.lf_min,
        warmup_epochs: float = CawbSchedule.warmup_epochs,
        epoch_scale_mode: str = CawbSchedule.epoch_scale_mode,
        steps_per_epoch: int | None = None,
        last_epoch: int = -1,
        schedule: CawbSchedule | None = None,
    ) -> None:
        # The positional order is the reference class's, so that its calls work unchanged; cawb's own names
        # (lf_min, warmup_epochs, ...) are keyword-only. eta_min and warmup_epoch are the reference's names for them.
        lf_min, lf_min_name = _one_of("lf_min", lf_min, CawbSchedule.lf_min, "eta_min", eta_min)
        warmup_epochs, warmup_name = _one_of("warmup_epochs", warmup_epochs, CawbSchedule.warmup_epochs,
                                             "warmup_epoch", warmup_epoch)
        if schedule is None:
            if epochs is None:
                raise CawbConfigError("epochs is required (or pass a ready schedule=CawbSchedule(...))")
            try:
                schedule = CawbSchedule(
                    epochs=epochs,
                    warmup_epochs=warmup_epochs,
                    restart_epochs=steps,
                    step_scale=step_scale,
                    epoch_scale=epoch_scale,
                    epoch_scale_mode=epoch_scale_mode,
                    lf=CawbSchedule.lf if lf is None else lf,
                    lf_min=lf_min,
                )
            except CawbConfigError as error:  # named as this caller named it
                caller_names = {"restart_epochs": "steps", "lf_min": lf_min_name, "warmup_epochs": warmup_name}
                raise CawbConfigError(error.restated(caller_names), error.parameter, error.value,
                                      error.requirement) from None
        elif not isinstance(schedule, CawbSchedule):
            raise CawbConfigError.invalid("schedule", schedule, "a cawb.CawbSchedule")
        if steps_per_epoch is not None and not is_int(steps_per_epoch, 1):
            raise CawbConfigError.invalid("steps_per_epoch", steps_per_epoch, "an integer >= 1")
        if not is_int(batchs, 0):
            raise CawbConfigError.invalid("batchs", batchs, "an integer >= 0 (batches per epoch)")
        if batchs and steps_per_epoch:
            raise CawbConfigError(
                "batchs (for step_batch warmup) and steps_per_epoch (per-iteration stepping) exclude each other: "
                "with steps_per_epoch, step() already ramps the warmup"
            )
        if not is_int(last_epoch, -1):
            raise CawbConfigError.invalid("last_epoch", last_epoch, "an integer >= -1")
        self.schedule = schedule
        self.steps_per_epoch = None if steps_per_epoch is None else int(steps_per_epoch)
        self.batches_per_epoch = int(batchs)
        self.warmup_iters = round(self.batches_per_epoch * schedule.warmup_epochs)
        self.batch_iter = -1  # step_batch() calls so far, minus one (the reference's iters_batch)
        if last_epoch != -1:
            # Resuming with a fresh optimizer: its lr is still the base lr. torch would raise a KeyError instead.
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        super().__init__(optimizer, last_epoch)

    @property
    def epoch(self) -> float:
        """The (fractional, in per-iteration mode) epoch whose learning rate the optimizer now holds."""
        if self.steps_per_epoch is None:
            return float(self.last_epoch)
        return self.last_epoch / self.steps_per_epoch

    def lr_factor(self, epoch: float) -> float:
        """Multiplier of the base lrs at ``epoch``, including the per-iteration warmup ramp where it applies."""
        factor = self.schedule.factor(epoch)
        if self.steps_per_epoch is not None and epoch < self.schedule.warmup_epochs:
            factor *= max(epoch, 0.0) / self.schedule.warmup_epochs
        return factor

    def get_lr(self) -> list:
        """Learning rates for the current step (closed form: no dependence on the previous step's values)."""
        factor = self.lr_factor(self.epoch)
        return [base_lr * factor for base_lr in self.base_lrs]

    _get_closed_form_lr = get_lr

    def step(self, epoch: int | None = None) -> float | Tensor:
        """Advance one epoch (one batch with ``steps_per_epoch``) and set every group's lr to ``base * f``.

        Returns the first param group's new lr, as the reference code's ``step()`` did (torch's schedulers return
        None; :meth:`get_last_lr` has every group's).

        Like torch's CosineAnnealingWarmRestarts, this overrides the base class's step with a direct update: the
        closed form needs no history. ``epoch`` is torch's deprecated explicit position, handled by the base class.
        """
        if epoch is not None:
            super().step(epoch)
            return self.optimizer.param_groups[0]["lr"]
        self._step_count += 1
        self.last_epoch += 1
        factor = self.lr_factor(self.last_epoch if self.steps_per_epoch is None else self.epoch)
        last = []
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            lr = base_lr * factor
            current = group["lr"]
            if isinstance(current, Tensor):  # tensor lrs (capturable/compiled optimizers) are updated in place
                current.fill_(lr)
                last.append(current.clone())
            else:
                group["lr"] = lr
                last.append(lr)
        self._last_lr = last
        return self.optimizer.param_groups[0]["lr"]

    def step_batch(self) -> float | None:
        """Linear warmup from 0, one call per batch before the forward pass (the reference code's API).

        Over the first ``warmup_epochs * batchs`` calls the learning rates rise linearly from 0 toward the first
        peak; afterwards this does nothing. Returns the first param group's lr while warming up, else ``None``.
        """
        if self.steps_per_epoch is not None:
            raise UsageError("step_batch() is for epoch mode; with steps_per_epoch, step() already ramps the warmup")
        self.batch_iter += 1
        if self.batch_iter >= self.warmup_iters:
            return None
        ramp = self.batch_iter / self.warmup_iters
        factor = self.schedule(self.epoch) * ramp
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """Scheduler state: counters, base lrs and the schedule's settings as plain data (no callables)."""
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "schedule")}
        state["schedule_config"] = self.schedule.config()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a schedule saved with a custom ``lf`` keeps this scheduler's callable."""
        state = dict(state_dict)
        config = state.pop("schedule_config", None)
        if config is not None:
            config = dict(config)
            if config["lf"] is None:
                if not self.schedule.custom_lf:
                    raise CawbConfigError(
                        "the saved schedule used a custom lf callable: construct this scheduler with the same lf "
                        "before load_state_dict()"
                    )
                config["lf"] = self.schedule.lf
            self.schedule = CawbSchedule(**config)
        self.__dict__.update(state)
