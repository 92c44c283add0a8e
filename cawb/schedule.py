"""The CAWB learning-rate multiplier: cosine annealing with warm booting (restarts at chosen epochs).

This module is the one place the formula lives. It is pure Python: no torch, no ultralytics, no I/O, so it
can be tested, plotted and reasoned about on its own. The PyTorch scheduler (:mod:`cawb.lr_scheduler`) and the
ultralytics trainer (:mod:`cawb.training.trainer`) only multiply their base learning rates by :meth:`CawbSchedule.factor`.

Formula
-------
With ``E`` = ``epochs``, ``W`` = ``warmup_epochs``, restart epochs ``s_1 < ... < s_n`` (only the restarts the
run makes, ``W < s < E - 1``: see below), ``g`` = ``step_scale`` and ``k`` = ``epoch_scale``, the boundaries are
``B = [W, s_1, ..., s_n, E]``.
For a (possibly fractional) epoch ``e``, clamped to ``[0, E]``, take the first segment ``i`` with
``e <= B[i+1]``; then::

    x      = max(e - B[i], 0)          # before W this is 0: warmup ramps toward the first peak
    period = L_i * k  (stretch)  or  L_i + k  (extend)   for a non-final segment, L_i = B[i+1] - B[i]
    period = L_i                                          for the final segment
    factor = g**i * lf(x, period)

and the built-in decay functions, with ``m`` = ``lf_min``::

    cos(x, period)    = (1 + cos(pi * x / period)) / 2 * (1 - m) + m
    linear(x, period) = (1 - x / period) * (1 - m) + m

Segment boundaries are inclusive on the right: epoch ``s_i`` itself still belongs to the cycle it ends, and the
restart (the jump up to ``g**i``) is seen at the first epoch after it. With no restarts this is one plain cosine
from ``W`` to ``E``.

Restarts a run makes
--------------------
A restart at ``s`` is kept only when ``W < s < E - 1`` (:func:`restart_is_made`); the others are listed in
``dropped_restart_epochs`` and shape nothing. A trainer stepping once per epoch trains epochs ``0 .. E - 1`` at
``factor(0) .. factor(E - 1)``, and a restart at ``s`` is first seen at the first whole epoch after ``s``
(``floor(s) + 1``), which is trained only when ``s < E - 1``: a restart at ``E - 1`` or later would never change
the learning rate, and at or before ``W`` it would fall inside the warmup. Stepped per iteration, a restart inside
the last epoch could show for a fraction of it; it is dropped all the same, so that one hyp gives one schedule
whatever the stepping, and no cycle is shorter than the epoch that would have to show it.

``epoch_scale`` makes a non-final cycle anneal over a longer (stretch, ``k > 1``) period than it is given, so the
next restart comes before the learning rate has reached the bottom. ``stretch`` is what reproduces the seed
article's published curves; ``extend`` is what the public reference implementation (Huangdebo/CAWB) computes.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union

from cawb.utils.checks import is_int, is_number
from cawb.utils.errors import InputError

__all__ = [
    "BUILTIN_DECAYS",
    "EPOCH_SCALE_MODES",
    "CawbConfigError",
    "CawbSchedule",
    "DecayFunction",
    "cosine_decay",
    "linear_decay",
    "restart_is_made",
    "restart_rule",
    "scale_restart_epochs",
]

#: A decay function ``lf(x, period) -> multiplier``: ``x`` epochs into a cycle annealed over ``period`` epochs.
DecayFunction = Callable[[float, float], float]


class CawbConfigError(InputError):
    """An invalid CAWB setting; the message names the parameter, its value and what is allowed.

    ``parameter``, ``value`` and ``requirement`` are kept so that callers reading settings from elsewhere (a hyp
    file, the reference scheduler's keywords) can restate the error in their own names (:meth:`restated`).
    """

    def __init__(self, message: str, parameter: str | None = None, value: object = None, requirement: str = ""):
        super().__init__(message)
        self.parameter, self.value, self.requirement = parameter, value, requirement

    @classmethod
    def invalid(cls, parameter: str, value: object, requirement: str) -> "CawbConfigError":
        """The standard message: ``parameter=value is invalid: it must be <requirement>``."""
        return cls(f"{parameter}={value!r} is invalid: it must be {requirement}", parameter, value, requirement)

    def restated(self, names: Mapping[str, str]) -> str:
        """The message with the parameter called by the caller's name for it (``names``: field -> name), e.g.
        ``cawb_steps=...`` for a hyp file's ``restart_epochs``."""
        if self.parameter in names and self.requirement:
            return f"{names[self.parameter]}={self.value!r} is invalid: it must be {self.requirement}"
        return str(self)


def cosine_decay(x: float, period: float, lf_min: float) -> float:
    """Half-cosine from 1 at ``x = 0`` down to ``lf_min`` at ``x = period``."""
    return (1.0 + math.cos(math.pi * x / period)) * 0.5 * (1.0 - lf_min) + lf_min


def linear_decay(x: float, period: float, lf_min: float) -> float:
    """Straight line from 1 at ``x = 0`` down to ``lf_min`` at ``x = period``."""
    return (1.0 - x / period) * (1.0 - lf_min) + lf_min


#: Built-in decay functions by the name used in hyp files (``cawb_lf``) and constructor arguments (``lf``).
BUILTIN_DECAYS: dict[str, Callable[[float, float, float], float]] = {"cos": cosine_decay, "linear": linear_decay}

#: How ``epoch_scale`` changes a non-final cycle's period ``L``: ``stretch`` gives ``L * k``, ``extend`` ``L + k``.
EPOCH_SCALE_MODES = ("stretch", "extend")


def restart_is_made(restart: float, warmup_epochs: float, epochs: int) -> bool:
    """Whether a run of ``epochs`` epochs with ``warmup_epochs`` of warmup makes a restart at epoch ``restart``:
    ``warmup_epochs < restart < epochs - 1`` (module docstring, "Restarts a run makes"). Inclusive nowhere: a restart
    at ``epochs - 1`` would first show at epoch ``epochs``, which is never trained."""
    return warmup_epochs < restart < epochs - 1


def restart_rule(warmup_epochs: float, epochs: int) -> str:
    """:func:`restart_is_made` in words, with the numbers of one run, for messages:
    ``warmup_epochs 1 < s < epochs - 1 = 19``."""
    return f"warmup_epochs {warmup_epochs:g} < s < epochs - 1 = {epochs - 1}"


def _describe_function(function: Callable) -> str:
    """A name for a user function that points at its definition, for error messages."""
    name = getattr(function, "__qualname__", None) or repr(function)
    module = getattr(function, "__module__", None)
    return f"{module}.{name}" if module else name


def _require_real(name: str, value: object) -> float:
    """``value`` as a float, or CawbConfigError if it is not a finite real number (bools are refused)."""
    if not is_number(value):
        raise CawbConfigError.invalid(name, value, "a finite number")
    return float(value)


@dataclass(frozen=True)
class CawbSchedule:
    """Learning-rate multiplier of CAWB as a function of the epoch: ``schedule(epoch) -> factor``.

    Args:
        epochs: total epochs ``E`` (int >= 1).
        warmup_epochs: ``W`` with ``0 <= W < E``; before ``W`` the factor stays at the first peak (1.0 with the
            built-in decays) so a trainer's warmup ramps toward it.
        restart_epochs: epochs at which a new cycle starts (the seed code's ``cawb_steps``). Any iterable of
            numbers >= 0; a sorted, de-duplicated copy is kept, holding only the restarts the run makes,
            ``W < s < E - 1`` (:func:`restart_is_made`; the caller's list is never mutated). The ones left out are
            listed in :attr:`dropped_restart_epochs`.
        step_scale: ``g > 0``; the peak of cycle ``i`` is ``g**i``.
        epoch_scale: ``k > 0``; how much longer than its length a non-final cycle's period is (see
            ``epoch_scale_mode``). ``k = 1`` in ``stretch`` mode anneals each cycle exactly to the bottom.
        epoch_scale_mode: ``"stretch"`` (period ``L * k``, default, reproduces the article's figures) or
            ``"extend"`` (period ``L + k``, what the reference implementation computes).
        lf: ``"cos"``, ``"linear"``, or a callable ``lf(x, period) -> multiplier`` (``lf_min`` is then unused).
        lf_min: ``m`` in ``[0, 1]``: where the built-in decays end, as a fraction of the cycle's peak.

    Raises:
        CawbConfigError: (a ValueError) at construction, naming the parameter, the value and the allowed range.
            A custom ``lf`` returning NaN, inf, a negative or a non-number is reported at its first evaluation.

    Example:
        >>> s = CawbSchedule(epochs=150, restart_epochs=[30, 80], step_scale=0.7, epoch_scale=4.0, lf_min=0.35)
        >>> round(s(31), 4)   # just after the first restart: peak 0.7
        0.7
    """

    epochs: int
    warmup_epochs: float = 0.0
    restart_epochs: Sequence[float] = ()
    step_scale: float = 0.8
    epoch_scale: float = 1.0
    epoch_scale_mode: str = "stretch"
    lf: Union[str, DecayFunction] = "cos"
    lf_min: float = 0.05

    boundaries: tuple[float, ...] = field(init=False, repr=False, compare=False)
    periods: tuple[float, ...] = field(init=False, repr=False, compare=False)
    peaks: tuple[float, ...] = field(init=False, repr=False, compare=False)
    dropped_restart_epochs: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen dataclass: normalised values are stored once, here
        epochs = self.epochs
        if not is_int(epochs, 1):
            raise CawbConfigError.invalid("epochs", epochs, "an integer >= 1")
        set_field(self, "epochs", int(epochs))
        warmup = _require_real("warmup_epochs", self.warmup_epochs)
        if not 0 <= warmup < epochs:
            raise CawbConfigError.invalid("warmup_epochs", self.warmup_epochs, f"in [0, epochs={epochs})")
        set_field(self, "warmup_epochs", warmup)

        restarts = self.restart_epochs
        if isinstance(restarts, (str, bytes)) or not hasattr(restarts, "__iter__"):
            raise CawbConfigError.invalid("restart_epochs", restarts, "a list of epoch numbers")
        values = sorted({_require_real("restart_epochs", s) for s in restarts})
        if values and values[0] < 0:
            raise CawbConfigError.invalid("restart_epochs", list(restarts), "a list of epoch numbers >= 0")
        kept = tuple(s for s in values if restart_is_made(s, warmup, epochs))
        set_field(self, "restart_epochs", kept)
        set_field(self, "dropped_restart_epochs", tuple(s for s in values if not restart_is_made(s, warmup, epochs)))

        if _require_real("step_scale", self.step_scale) <= 0:
            raise CawbConfigError.invalid("step_scale", self.step_scale, "> 0")
        set_field(self, "step_scale", float(self.step_scale))
        if _require_real("epoch_scale", self.epoch_scale) <= 0:
            raise CawbConfigError.invalid("epoch_scale", self.epoch_scale, "> 0")
        set_field(self, "epoch_scale", float(self.epoch_scale))
        if self.epoch_scale_mode not in EPOCH_SCALE_MODES:
            raise CawbConfigError.invalid("epoch_scale_mode", self.epoch_scale_mode, f"one of {', '.join(EPOCH_SCALE_MODES)}")
        lf_min = _require_real("lf_min", self.lf_min)
        if not 0 <= lf_min <= 1:
            raise CawbConfigError.invalid("lf_min", self.lf_min, "in [0, 1]")
        set_field(self, "lf_min", lf_min)
        if self.lf not in BUILTIN_DECAYS if isinstance(self.lf, str) else not callable(self.lf):
            raise CawbConfigError.invalid("lf", self.lf, f"one of {', '.join(BUILTIN_DECAYS)} or a callable lf(x, period)")

        boundaries = (warmup, *kept, float(epochs))
        lengths = [end - start for start, end in zip(boundaries, boundaries[1:])]
        if self.epoch_scale_mode == "stretch":
            periods = [length * self.epoch_scale for length in lengths[:-1]]
        else:
            periods = [length + self.epoch_scale for length in lengths[:-1]]
        set_field(self, "boundaries", boundaries)
        set_field(self, "periods", (*periods, lengths[-1]))  # epoch_scale never applies to the final cycle
        set_field(self, "peaks", tuple(self.step_scale**index for index in range(len(lengths))))

    @property
    def custom_lf(self) -> bool:
        """True when ``lf`` is a user callable rather than a built-in name."""
        return not isinstance(self.lf, str)

    def cycle_index(self, epoch: float) -> int:
        """Index ``i`` of the cycle (segment) that ``epoch`` falls in; boundaries belong to the cycle they end."""
        clamped = min(max(epoch, 0.0), self.boundaries[-1])
        # bisect_left over the segment ends B[1:] finds the first i with epoch <= B[i+1] (epochs <= W give 0)
        return bisect.bisect_left(self.boundaries, clamped, 1) - 1

    def factor(self, epoch: float) -> float:
        """The multiplier for ``epoch`` (0-based; fractional values for per-iteration use; clamped to ``[0, E]``).

        Raises:
            ValueError: ``epoch`` is NaN, or a custom ``lf`` returned NaN, inf, a negative or a non-number.
        """
        # Called once per optimizer step by the schedulers: kept lean (no helper calls on the hot path).
        boundaries = self.boundaries
        if epoch > boundaries[-1]:
            epoch = boundaries[-1]
        elif epoch != epoch:
            raise InputError("epoch is NaN: the schedule is defined for real epochs only")
        index = bisect.bisect_left(boundaries, epoch, 1) - 1
        x = epoch - boundaries[index]
        if x < 0.0:  # before the warmup ends (or a negative epoch): hold the first peak
            x = 0.0
        lf = self.lf
        if lf.__class__ is str:
            return self.peaks[index] * BUILTIN_DECAYS[lf](x, self.periods[index], self.lf_min)
        return self.peaks[index] * self._checked_custom_decay(x, self.periods[index])

    __call__ = factor

    def _checked_custom_decay(self, x: float, period: float) -> float:
        """Evaluate the user's ``lf`` and refuse values that would poison training (NaN, inf, negative)."""
        function = self.lf
        try:
            value = float(function(x, period))
        except (TypeError, ValueError) as error:
            raise CawbConfigError(
                f"custom lf {_describe_function(function)}(x={x:g}, period={period:g}) did not return a number: {error}"
            ) from error
        except Exception as error:  # whatever the user's function raises: said as a setting error, with its cause
            raise CawbConfigError(
                f"custom lf {_describe_function(function)}(x={x:g}, period={period:g}) raised "
                f"{type(error).__name__}: {error}"
            ) from error
        if not math.isfinite(value) or value < 0.0:
            raise CawbConfigError(
                f"custom lf {_describe_function(function)}(x={x:g}, period={period:g}) returned {value!r}: "
                "a decay function must return a finite number >= 0"
            )
        return value

    def check_epochs(self) -> None:
        """Evaluate the schedule at every whole epoch ``0 .. epochs`` (where a trainer stepping once per epoch
        evaluates it), so that a custom ``lf`` that fails (wrong signature, raises, NaN, inf, negative) fails here,
        before training, rather than at the epoch that first meets it. Cheap: ``epochs + 1`` calls.

        Raises:
            CawbConfigError: the first failing evaluation, naming the function, ``x`` and ``period``.
        """
        for epoch in range(self.epochs + 1):
            self.factor(float(epoch))

    def config(self) -> dict:
        """The settings as plain data (``lf`` as its name, or ``None`` for a callable): safe to save and compare."""
        return {
            "epochs": self.epochs,
            "warmup_epochs": self.warmup_epochs,
            "restart_epochs": list(self.restart_epochs),
            "step_scale": self.step_scale,
            "epoch_scale": self.epoch_scale,
            "epoch_scale_mode": self.epoch_scale_mode,
            "lf": None if self.custom_lf else self.lf,
            "lf_min": self.lf_min,
        }


def scale_restart_epochs(restarts: Sequence[float], from_epochs: int, to_epochs: int) -> list[int]:
    """Move restart epochs written for a ``from_epochs`` run to the same relative places in a ``to_epochs`` run.

    Each restart ``s`` becomes ``s * to_epochs / from_epochs`` rounded half up to a whole epoch (an epoch-stepped
    schedule restarts on epoch boundaries); the result is sorted and de-duplicated. Restarts that land at or
    before the warmup or in the last epoch are kept here: :class:`CawbSchedule` drops those, as for any restart list.

    Example: the article's ``[30, 80]`` of 150 epochs is ``[4, 11]`` of 20 and ``[1, 2]`` of 3.

    Raises:
        CawbConfigError: an epoch count that is not an integer >= 1, or a restart that is not a finite number.
    """
    for name, value in (("from_epochs", from_epochs), ("to_epochs", to_epochs)):
        if not is_int(value, 1):
            raise CawbConfigError.invalid(name, value, "an integer >= 1")
    if isinstance(restarts, (str, bytes)) or not hasattr(restarts, "__iter__"):
        raise CawbConfigError.invalid("restart_epochs", restarts, "a list of epoch numbers")
    # floor(x + 0.5), not round(): Python's round() sends halves to the even neighbour (2.5 -> 2, 3.5 -> 4).
    return sorted({math.floor(_require_real("restart_epochs", s) * to_epochs / from_epochs + 0.5) for s in restarts})
