"""cawb/experiment/compare/seed_statistics.py: mean and spread, paired differences and their verdict, on hand-made
numbers checked against printed t tables."""

import math

import pytest

from cawb.experiment.compare.seed_statistics import mean_std, paired_difference, t_quantile_975, verdict


def test_mean_and_sample_std():
    mean, std = mean_std([0.30, 0.32, 0.34])
    # deviations -0.02, 0, +0.02: sum of squares 0.0008 over n - 1 = 2 -> variance 0.0004
    assert mean == pytest.approx(0.32) and std == pytest.approx(0.02)
    assert mean_std([0.5]) == (0.5, None)  # one seed: no spread (the table shows n/a)
    assert mean_std([]) == (None, None)


def test_paired_difference_uses_common_seeds_and_student_t():
    base = {0: 0.30, 1: 0.31, 2: 0.29}
    other = {0: 0.31, 1: 0.33, 2: 0.32, 3: 0.90}  # seed 3 has no partner: left out
    difference = paired_difference(base, other)
    assert difference.seeds == (0, 1, 2)
    assert difference.values == pytest.approx((0.01, 0.02, 0.03))
    assert difference.mean == pytest.approx(0.02) and difference.std == pytest.approx(0.01)
    assert difference.se == pytest.approx(0.01 / math.sqrt(3))  # 0.0057735
    # t(0.975, 2) = 4.3027 (tables): half-width 4.3027 * 0.0057735 = 0.024842
    assert difference.ci95 == pytest.approx((0.02 - 0.024842, 0.02 + 0.024842), abs=1e-6)
    assert "not distinguishable" in verdict(difference, "CAWB", "cos")


def test_a_consistent_difference_is_called_and_a_single_pair_is_not():
    clear = paired_difference({0: 0.300, 1: 0.300, 2: 0.300}, {0: 0.310, 1: 0.312, 2: 0.311})
    # differences 0.010, 0.012, 0.011: mean 0.011, std 0.001, se 0.00057735, half-width 0.0024844
    assert clear.ci95 == pytest.approx((0.011 - 0.0024844, 0.011 + 0.0024844), abs=1e-6)
    assert verdict(clear, "CAWB", "cos").startswith("CAWB is higher than cos")
    lower = paired_difference({0: 0.310, 1: 0.312, 2: 0.311}, {0: 0.300, 1: 0.300, 2: 0.300})
    assert verdict(lower, "CAWB", "cos").startswith("CAWB is lower than cos")

    single = paired_difference({0: 0.294}, {0: 0.302})
    assert single.mean == pytest.approx(0.008) and single.std is None and single.ci95 is None
    assert "cannot be told" in verdict(single, "CAWB", "cos")
    assert "no seed finished in both" in verdict(paired_difference({0: 0.3}, {1: 0.3}), "CAWB", "cos")


@pytest.mark.parametrize("df,table", [(1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042)])
def test_the_interval_uses_the_two_sided_95_percent_t_quantile(df, table):
    assert t_quantile_975(df) == pytest.approx(table, abs=5e-4)  # printed t tables, 0.975 column


def test_t_quantile_is_exact_beyond_30_and_refuses_df_0():
    assert 1.96 < t_quantile_975(100) < t_quantile_975(40) < t_quantile_975(30)
    with pytest.raises(ValueError):
        t_quantile_975(0)
