"""How many seeds a comparison needs: power of the paired t-test, from the exact noncentral t distribution.

With ``n`` pairs whose differences have standard deviation ``sd``, the paired t-test of "mean difference = 0" at
level ``alpha`` (two-sided) rejects when ``|T| > t(1 - alpha/2, n - 1)``, ``T = mean / (sd_hat / sqrt(n))``. When the
true mean difference is ``effect``, ``T`` follows the noncentral t distribution with ``n - 1`` degrees of freedom
and noncentrality ``effect * sqrt(n) / sd``, so the power is

    power(n, effect, sd) = P(T > t_crit) + P(T < -t_crit),   T ~ nct(df = n - 1, nc = effect * sqrt(n) / sd)

(scipy.stats.nct; no normal approximation, which overstates the power of a few seeds). From it:

* :func:`seeds_needed`: the smallest ``n >= 2`` whose power reaches the target (80% by default);
* :func:`detectable_difference`: the smallest ``effect`` that ``n`` pairs detect with that power.

``sd`` is a planning value: the spread of the differences seen so far, itself uncertain with few pairs.
scipy is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math

from cawb.utils.errors import InputError

__all__ = ["ALPHA", "POWER", "detectable_difference", "paired_t_power", "seeds_needed", "t_quantile"]

#: The test's level (two-sided) and the power asked for, as the report states them.
ALPHA = 0.05
POWER = 0.8


def t_quantile(probability: float, df: int) -> float:
    """The Student t quantile ``t(probability, df)`` (scipy.stats.t.ppf), df >= 1."""
    from scipy.stats import t

    if df < 1:
        raise InputError(f"df={df} is invalid: it must be >= 1")
    return float(t.ppf(probability, df))


def paired_t_power(n: int, effect: float, sd: float, alpha: float = ALPHA) -> float:
    """Probability that a two-sided paired t-test at level ``alpha`` on ``n`` pairs rejects "no difference" when
    the differences have mean ``effect`` and standard deviation ``sd`` (n >= 2, sd >= 0)."""
    from scipy.stats import nct

    if n < 2:
        raise InputError(f"n={n} is invalid: a paired t-test needs at least 2 pairs")
    if sd < 0:
        raise InputError(f"sd={sd} is invalid: it must be >= 0")
    if sd == 0:  # no spread: any nonzero difference is certain, zero never is
        return 1.0 if effect else alpha
    df = n - 1
    critical = t_quantile(1 - alpha / 2, df)
    noncentrality = abs(effect) * math.sqrt(n) / sd
    # P(T < -c) as P(-T > c), -T ~ nct(df, -nc): scipy's cdf of that far tail returns NaN for some df = 1 values.
    return float(nct.sf(critical, df, noncentrality) + nct.sf(critical, df, -noncentrality))


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """The smallest number of pairs ``n >= 2`` with ``paired_t_power(n, effect, sd, alpha) >= power``.

    Power grows with ``n``, so the answer is found by doubling an upper bound and bisecting.

    Raises:
        ValueError: ``effect`` is 0 (no number of seeds detects it) or ``power`` is not in (alpha, 1).
    """
    if effect == 0:
        raise InputError("effect=0 is invalid: no number of seeds detects a difference of zero")
    if not alpha < power < 1:
        raise InputError(f"power={power} is invalid: it must be between alpha ({alpha}) and 1")
    low, high = 1, 2  # invariant: power(low) < target <= power(high) (low = 1 stands for "not enough")
    while paired_t_power(high, effect, sd, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if paired_t_power(middle, effect, sd, alpha) >= power:
            high = middle
        else:
            low = middle
    return high


def detectable_difference(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest mean difference that ``n`` pairs (n >= 2) detect with probability ``power`` (0 when sd is 0)."""
    from scipy.optimize import brentq

    if n < 2:
        raise InputError(f"n={n} is invalid: a paired t-test needs at least 2 pairs")
    if not alpha < power < 1:
        raise InputError(f"power={power} is invalid: it must be between alpha ({alpha}) and 1")
    if sd == 0:
        return 0.0

    def shortfall(effect: float) -> float:
        return paired_t_power(n, effect, sd, alpha) - power

    high = sd
    while shortfall(high) < 0:
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=sd * 1e-10, rtol=1e-12))
