"""The tuner's search space: what each trial draws, and how restart positions become restart epochs.

A space maps a key to a fixed value, a numeric range ``{low, high, log, step}`` or ``{choices: [...]}``. The default
(:data:`DEFAULT_SPACE`) searches the CAWB settings; a ``--space`` YAML file changes entries of it, fixes them, or
adds ultralytics' numeric hyperparameters (``lr0``, ``momentum``, ``warmup_epochs``, ...)::

    n_restarts: {low: 0, high: 3}                   # how many restarts (warm boots)
    restart_min_gap: 0.05                           # fraction of post-warmup training between restarts
    cawb_step_scale: {low: 0.3, high: 1.2}
    cawb_epoch_scale: {low: 1, high: 8, log: true}
    cawb_lf_min: {low: 0.0, high: 0.6}
    cawb_lf: {choices: [cos, linear]}
    # cawb_steps: [30, 80]                          # fixed restart epochs: n_restarts is then not searched
    # lr0: {low: 0.001, high: 0.02, log: true}      # any numeric ultralytics hyperparameter

**Restarts.** The number of restarts ``n`` is drawn first, then ``n`` raw positions ``restart_1 .. restart_n``,
each uniform in [0, 1] (define-by-run: TPE sees only the positions a trial has). They become positions as
fractions of the post-warmup training by a fixed map (:func:`spaced_fractions`): sorted, then spread so that
consecutive restarts, the first and the warmup's end, and the last and the final epoch are at least
``restart_min_gap`` apart. The map is affine on sorted draws, so uniform draws give positions uniform over every
valid placement. :func:`restart_epochs_from_fractions` then turns the fractions into the integer epochs
``W < s < E - 1`` that a run makes and :class:`cawb.CawbSchedule` keeps (rounded, duplicates merged).

Pure Python and yaml (ultralytics' key lists are read lazily); no optuna import at module level.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import yaml

from cawb.training.hyp import CAWB_HYP_KEYS, HypError, closest_key, schedule_from_hyp, validate_hyp
from cawb.utils.checks import is_int, is_number
from cawb.utils.errors import InputError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DEFAULT_SPACE",
    "MAX_RESTARTS",
    "Choices",
    "Range",
    "SearchSpace",
    "TrialHyp",
    "build_space",
    "effective_warmup",
    "load_space",
    "restart_epochs_from_fractions",
    "restart_slots",
    "spaced_fractions",
]

N_RESTARTS = "n_restarts"
MIN_GAP = "restart_min_gap"
STEPS = "cawb_steps"
#: The most restarts a space may ask for.
MAX_RESTARTS = 10


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric range searched by the sampler: ``low <= value <= high``, on a log scale with ``log``, on a grid of
    ``step`` with ``step``; ``integer`` ranges draw integers."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, **({"log": True} if self.log else {}),
                **({"step": self.step} if self.step is not None else {})}


@dataclasses.dataclass(frozen=True)
class Choices:
    """A categorical choice among ``values``."""

    values: tuple

    def as_dict(self) -> dict[str, Any]:
        return {"choices": list(self.values)}


#: The default search space: 0-3 restarts, spaced 5% of the post-warmup training apart, and the CAWB
#: settings within the ranges the article's curves suggest (a restart may raise the peak: step_scale up to 1.2).
DEFAULT_SPACE: dict[str, Any] = {
    N_RESTARTS: Range(0, 3, integer=True),
    MIN_GAP: 0.05,
    "cawb_step_scale": Range(0.3, 1.2),
    "cawb_epoch_scale": Range(1.0, 8.0, log=True),
    "cawb_lf_min": Range(0.0, 0.6),
    "cawb_lf": Choices(("cos", "linear")),
}

# cawb keys a space may hold (``cawb`` itself is always true in a trial), and the numeric ones among them.
_CAWB_SPACE_KEYS = tuple(key for key in CAWB_HYP_KEYS if key != "cawb")
_CAWB_NUMERIC = frozenset({"cawb_step_scale", "cawb_epoch_scale", "cawb_lf_min"})


def spaced_fractions(raw: Sequence[float], min_gap: float) -> list[float]:
    """Restart positions as fractions of the post-warmup training, from raw draws in [0, 1].

    ``p_i = min_gap * i + u_(i) * (1 - (n + 1) * min_gap)`` for ``i = 1 .. n``, ``u_(i)`` the sorted draws. So
    ``p_1 >= min_gap``, ``p_(i+1) - p_i >= min_gap`` and ``p_n <= 1 - min_gap``; the map is affine on sorted draws,
    so uniform draws give positions uniform over all valid placements.

    Raises:
        ValueError: ``(n + 1) * min_gap >= 1`` (no room) or a draw outside [0, 1].
    """
    n = len(raw)
    room = 1.0 - (n + 1) * min_gap
    if n and room <= 0:
        raise InputError(f"{n} restarts {min_gap:g} apart do not fit: (n + 1) * {MIN_GAP} must be < 1")
    if any(not 0.0 <= u <= 1.0 for u in raw):
        raise InputError(f"raw restart positions must be in [0, 1], got {list(raw)}")
    return [min_gap * i + u * room for i, u in enumerate(sorted(raw), start=1)]


def effective_warmup(warmup_epochs: float | None, epochs: int) -> float:
    """The warmup length the schedule uses for a run of ``epochs`` (ultralytics leaves the last epoch unwarmed);
    ``None``: ultralytics' default ``warmup_epochs``."""
    given = {} if warmup_epochs is None else {"warmup_epochs": warmup_epochs}
    schedule = schedule_from_hyp({"cawb": True, **given}, epochs=epochs, source="tune")
    assert schedule is not None
    return schedule.warmup_epochs


def restart_slots(epochs: int, warmup: float) -> tuple[int, int]:
    """The first and last integer epoch a restart can take, ``warmup < s < epochs - 1``
    (:func:`cawb.schedule.restart_is_made`; first > last: none)."""
    return math.floor(warmup) + 1, epochs - 2


def restart_epochs_from_fractions(fractions: Sequence[float], epochs: int, warmup: float) -> list[int]:
    """Integer restart epochs for positions given as fractions of the post-warmup training.

    ``s = round(W + p * (E - W))`` (halves up), moved into ``[floor(W) + 1, E - 2]``, the integer epochs after the
    warmup's end ``W`` whose restart the run makes (:func:`restart_slots`); two positions landing on one epoch give
    one restart. Sorted, unique; empty when no integer epoch fits.
    """
    first, last = restart_slots(epochs, warmup)
    if first > last:
        return []
    return sorted({min(max(math.floor(warmup + p * (epochs - warmup) + 0.5), first), last) for p in fractions})


@dataclasses.dataclass(frozen=True)
class TrialHyp:
    """What one trial trains with: the hyp values it sets (``cawb`` true, ``cawb_steps`` and the searched and fixed
    keys) and, when the restarts were searched, their positions as fractions of the post-warmup training."""

    hyp: dict[str, Any]
    restart_fractions: list[float] | None


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A checked search space: ``entries`` maps keys to a :class:`Range`, :class:`Choices` or a fixed value."""

    entries: Mapping[str, Any]

    @property
    def searches_restarts(self) -> bool:
        """Whether the number and positions of the restarts are drawn (no fixed ``cawb_steps``)."""
        return STEPS not in self.entries

    def max_restarts(self) -> int:
        entry = self.entries.get(N_RESTARTS, 0)
        if isinstance(entry, Range):
            return int(entry.high)
        if isinstance(entry, Choices):
            return int(max(entry.values))
        return int(entry)

    def as_dict(self) -> dict[str, Any]:
        """JSON/YAML data of the space (the ``--space`` file format)."""
        return {key: entry.as_dict() if isinstance(entry, (Range, Choices)) else entry
                for key, entry in self.entries.items()}

    def describe(self) -> list[str]:
        """One line per entry, e.g. ``cawb_epoch_scale: 1 .. 8 (log)``."""
        lines = []
        for key, entry in self.entries.items():
            if isinstance(entry, Range):
                text = f"{entry.low:g} .. {entry.high:g}" + (" (log)" if entry.log else "") + (
                    f" step {entry.step:g}" if entry.step is not None else "")
            elif isinstance(entry, Choices):
                text = " | ".join(map(str, entry.values))
            else:
                text = f"{entry} (fixed)"
            lines.append(f"{key}: {text}")
        return lines

    def with_restart_limit(self, limit: int) -> SearchSpace:
        """This space with at most ``limit`` restarts (fewer integer epochs than restarts fit in a short run)."""
        if not self.searches_restarts or self.max_restarts() <= limit:
            return self
        entry = self.entries[N_RESTARTS]
        if isinstance(entry, Range):
            capped: Any = Range(min(entry.low, limit), limit, integer=True) if entry.low < limit else limit
        elif isinstance(entry, Choices):
            values = tuple(sorted({min(int(v), limit) for v in entry.values}))
            capped = Choices(values) if len(values) > 1 else values[0]
        else:
            capped = limit
        return SearchSpace({**self.entries, N_RESTARTS: capped})

    def suggest(self, trial: optuna.trial.Trial, base: Mapping[str, Any], epochs: int) -> TrialHyp:
        """Draw one trial's values (define-by-run: the restart positions after their number).

        ``base``: the settings the trial starts from (its ``warmup_epochs`` places the restarts unless the space
        searches ``warmup_epochs`` itself).
        """
        hyp: dict[str, Any] = {"cawb": True}
        for key, entry in self.entries.items():
            if key not in (N_RESTARTS, MIN_GAP, STEPS):
                hyp[key] = _suggest(trial, key, entry)
        if not self.searches_restarts:
            hyp[STEPS] = list(self.entries[STEPS])
            return TrialHyp(hyp=hyp, restart_fractions=None)
        count = int(_suggest(trial, N_RESTARTS, self.entries[N_RESTARTS]))
        raw = [trial.suggest_float(f"restart_{i}", 0.0, 1.0) for i in range(1, count + 1)]
        fractions = spaced_fractions(raw, float(self.entries[MIN_GAP]))
        warmup = effective_warmup({**base, **hyp}.get("warmup_epochs"), epochs)
        hyp[STEPS] = restart_epochs_from_fractions(fractions, epochs, warmup)
        return TrialHyp(hyp=hyp, restart_fractions=fractions)


def _suggest(trial: optuna.trial.Trial, key: str, entry: Any) -> Any:
    if isinstance(entry, Range):
        if entry.integer:
            return trial.suggest_int(key, int(entry.low), int(entry.high), step=int(entry.step or 1), log=entry.log)
        return trial.suggest_float(key, float(entry.low), float(entry.high), step=entry.step, log=entry.log)
    if isinstance(entry, Choices):
        return trial.suggest_categorical(key, list(entry.values))
    return entry


# --- reading and checking a space ------------------------------------------------------------------------------


def _allowed_keys() -> list[str]:
    from cawb.training.ultralytics_settings import tunable_ultralytics_keys

    return [N_RESTARTS, MIN_GAP, *_CAWB_SPACE_KEYS, *tunable_ultralytics_keys()]


def _is_integer_key(key: str) -> bool:
    from cawb.utils.ultralytics_compat import setting_rules

    return key == N_RESTARTS or key in setting_rules().int_keys


def _check_key(key: Any, source: str) -> None:
    from cawb.training.ultralytics_settings import ultralytics_defaults

    if not isinstance(key, str):
        raise HypError(f"{source}: key {key!r} is not a string")
    if key == "cawb":
        raise HypError(f"{source}: cawb cannot be searched: every trial trains with CAWB (cawb: true)")
    allowed = _allowed_keys()
    if key in allowed:
        return
    if key in ultralytics_defaults():
        raise HypError(f"{source}: {key} is a run setting, not a hyperparameter a search may vary; give it as a flag "
                       f"or key=value (searchable: cawb_* keys, {N_RESTARTS}, {MIN_GAP} and ultralytics' numeric "
                       "hyperparameters such as lr0, momentum, warmup_epochs)")
    raise HypError(f"{source}: unknown key '{key}'{closest_key(key, allowed)}: a space holds cawb_* keys, "
                   f"{N_RESTARTS}, {MIN_GAP} and ultralytics' numeric hyperparameters")


def _check_value(key: str, value: Any, source: str) -> None:
    """One concrete value (a bound, a choice, a fixed value) as training would check it."""
    from cawb.training.ultralytics_settings import check_ultralytics_settings

    if key == N_RESTARTS:
        if not is_int(value, 0) or value > MAX_RESTARTS:
            raise HypError(f"{source}: {N_RESTARTS}={value!r} is invalid: it must be an integer in [0, {MAX_RESTARTS}]")
    elif key == MIN_GAP:
        if not is_number(value, 0, 0.5, open_min=True, open_max=True):
            raise HypError(f"{source}: {MIN_GAP}={value!r} is invalid: it must be a number in (0, 0.5), a fraction "
                           "of the post-warmup training")
    elif key in CAWB_HYP_KEYS:
        validate_hyp({key: value}, source=source)
    else:
        check_ultralytics_settings({key: value}, source=source)


def _parse_range(key: str, raw: Mapping[str, Any], source: str) -> Range:
    where = f"{source}: {key}"
    if key not in _CAWB_NUMERIC and key not in (N_RESTARTS,) and key in _CAWB_SPACE_KEYS:
        raise HypError(f"{where} is not numeric: give {{choices: [...]}} or a fixed value")
    if key == MIN_GAP:
        raise HypError(f"{where} cannot be searched: give a fixed number")
    unknown = sorted(set(raw) - {"low", "high", "log", "step"})
    if unknown or "low" not in raw or "high" not in raw:
        raise HypError(f"{where}: a range is {{low: L, high: H}} with optional log: true or step: S"
                       + (f", not {', '.join(map(str, unknown))}" if unknown else ""))
    low, high, log, step = raw["low"], raw["high"], raw.get("log", False), raw.get("step")
    integer = _is_integer_key(key)
    for name, bound in (("low", low), ("high", high)):
        if not is_number(bound) or (integer and not float(bound).is_integer()):
            kind = "an integer" if integer else "a finite number"
            raise HypError(f"{where}: {name}={bound!r} is invalid: it must be {kind}")
    if low > high:
        raise HypError(f"{where}: low {low!r} > high {high!r}")
    if not isinstance(log, bool):
        raise HypError(f"{where}: log={log!r} is invalid: it must be true or false")
    if step is not None and (not is_number(step, 0, open_min=True) or (integer and not float(step).is_integer())):
        raise HypError(f"{where}: step={step!r} is invalid: it must be a number > 0" + (" (an integer)" if integer else ""))
    if log and step is not None:
        raise HypError(f"{where}: log and step cannot be combined")
    if log and low <= 0:
        raise HypError(f"{where}: a log range needs low > 0, not {low!r}")
    if integer:
        low, high, step = int(low), int(high), None if step is None else int(step)
    for bound in (low, high):
        _check_value(key, bound, source)
    return Range(low, high, log=log, step=step, integer=integer)


def _parse_entry(key: str, raw: Any, source: str) -> Any:
    if key == STEPS:
        if not isinstance(raw, list):
            raise HypError(f"{source}: {STEPS} can only be fixed, as a list of epochs (e.g. [30, 80]); search the "
                           f"restarts with {N_RESTARTS}")
        _check_value(key, raw, source)
        return list(raw)
    if isinstance(raw, Mapping) and "choices" in raw:
        choices = raw["choices"]
        if set(raw) != {"choices"} or not isinstance(choices, list) or not choices:
            raise HypError(f"{source}: {key}: a choice is {{choices: [a, b, ...]}} with at least one value")
        if any(not isinstance(c, (str, int, float, bool)) for c in choices) or len(set(map(repr, choices))) < len(choices):
            raise HypError(f"{source}: {key}: choices must be distinct numbers or strings, not {choices!r}")
        if key == MIN_GAP:
            raise HypError(f"{source}: {key} cannot be searched: give a fixed number")
        for choice in choices:
            _check_value(key, choice, source)
        return Choices(tuple(choices))
    if isinstance(raw, Mapping):
        return _parse_range(key, raw, source)
    if isinstance(raw, list):
        raise HypError(f"{source}: {key}: {raw!r} is ambiguous: write {{low: a, high: b}} for a range or "
                       "{choices: [...]} for a choice")
    _check_value(key, raw, source)
    return raw


def build_space(overrides: Mapping[str, Any] | None = None, source: str = "--space") -> SearchSpace:
    """:data:`DEFAULT_SPACE` with ``overrides`` (the ``--space`` file's mapping) applied, checked.

    Raises:
        HypError: one line naming the source, the key, the value and what is allowed.
    """
    overrides = dict(overrides or {})
    for key in overrides:
        _check_key(key, source)
    if STEPS in overrides and N_RESTARTS in overrides:
        raise HypError(f"{source}: {STEPS} (fixed restart epochs) contradicts {N_RESTARTS} (searched restarts): give "
                       "one of them")
    entries = dict(DEFAULT_SPACE)
    if STEPS in overrides:
        del entries[N_RESTARTS], entries[MIN_GAP]
    for key, raw in overrides.items():
        entries[key] = _parse_entry(key, raw, source)
    space = SearchSpace(entries)
    if space.searches_restarts:
        gap, most = float(entries[MIN_GAP]), space.max_restarts()
        if (most + 1) * gap >= 1:
            raise HypError(f"{source}: {most} restarts {gap:g} apart do not fit in the post-warmup training: "
                           f"({N_RESTARTS} + 1) * {MIN_GAP} must be < 1")
    return space


def load_space(path: str | Path | None) -> SearchSpace:
    """The default space, or the default with a ``--space`` YAML file's entries applied.

    Raises:
        HypError: the file is missing, a directory, unreadable, not YAML or not a mapping, or an entry is bad.
    """
    if path is None:
        return build_space()
    path = Path(path)
    source = f"--space {path}"
    if path.is_dir():
        raise HypError(f"{source}: is a directory, not a space YAML file")
    if not path.is_file():
        raise HypError(f"{source}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise HypError(f"{source}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise HypError(f"{source}: is not a text file (not UTF-8)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise HypError(f"{source}:{where} is not valid YAML ({getattr(error, 'problem', error)})") from None
    if data is None:
        raise HypError(f"{source}: is empty; give at least one entry (e.g. cawb_lf: cos)")
    if not isinstance(data, Mapping):
        raise HypError(f"{source}: must be a mapping of key: value, range or choices, not {type(data).__name__}")
    return build_space(data, source)
