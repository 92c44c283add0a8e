"""Statistics over seeds for the comparison's report: per arm mean and sample std, the paired difference of two arms
with its 95% Student-t interval and a one-sentence verdict, and how many seeds the paired t-test needs
(:mod:`cawb.experiment.power`). Pure functions of numbers: nothing here reads runs or writes files."""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Mapping, Sequence

from cawb.experiment.power import detectable_difference, seeds_needed, t_quantile

__all__ = ["PairedDifference", "mean_std", "paired_difference", "seed_power", "t_quantile_975", "verdict"]


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """``other - base`` per common seed, with its mean, spread and 95% t-interval (None where n is too small)."""

    seeds: tuple[int, ...]
    values: tuple[float, ...]
    mean: float | None
    std: float | None
    se: float | None
    ci95: tuple[float, float] | None

    @property
    def n(self) -> int:
        return len(self.values)


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the two-sided 95% Student-t multiplier (df >= 1), exact (scipy)."""
    return t_quantile(0.975, df)


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); std is None for one value, both are None for none."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def paired_difference(base: Mapping[int, float], other: Mapping[int, float]) -> PairedDifference:
    """``other[seed] - base[seed]`` for the seeds both have (sorted), with mean, std, se and 95% t-interval."""
    seeds = tuple(sorted(set(base) & set(other)))
    values = tuple(other[seed] - base[seed] for seed in seeds)
    mean, std = mean_std(values)
    if std is None:
        return PairedDifference(seeds, values, mean, None, None, None)
    se = std / math.sqrt(len(values))
    half = t_quantile_975(len(values) - 1) * se
    return PairedDifference(seeds, values, mean, std, se, (mean - half, mean + half))


def verdict(difference: PairedDifference, other: str, base: str) -> str:
    """One plain sentence on whether ``other - base`` holds beyond seed-to-seed noise on these seeds."""
    n = difference.n
    if n == 0:
        return "no seed finished in both arms: no paired difference"
    if difference.ci95 is None:
        return "one pair only: whether the difference holds cannot be told without its spread (run more seeds)"
    low, high = difference.ci95
    interval = f"95% interval [{low:+.4f}, {high:+.4f}] over {n} seeds"
    if low > 0 or high < 0:
        direction = "higher" if difference.mean > 0 else "lower"
        return (f"{other} is {direction} than {base} on these seeds: the {interval} excludes 0 "
                "(paired t-test at the 5% level; other data, settings or code versions may differ)")
    return f"not distinguishable from seed-to-seed noise: the {interval} includes 0"


def seed_power(difference: PairedDifference, effect: float) -> dict[str, Any]:
    """``seeds_needed`` to detect ``effect`` and the ``detectable_difference`` of the pairs run, with the spread
    they rest on (the differences' sample std); both None with fewer than two pairs (no spread to plan with)."""
    if difference.std is None:
        return {"effect": effect, "sd": None, "pairs": difference.n, "seeds_needed": None,
                "detectable_difference": None}
    return {"effect": effect, "sd": difference.std, "pairs": difference.n,
            "seeds_needed": seeds_needed(effect, difference.std),
            "detectable_difference": detectable_difference(difference.n, difference.std)}
