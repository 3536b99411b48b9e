"""The confidence-bound maths, against exact enumeration and simulation."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from pytest_cachecheck.checks.bounds import (
    binomial_cdf,
    loglog_slope,
    median_interval,
    quantile_bounds,
    quantile_lower_rank,
    quantile_upper_rank,
    samples_needed_for_upper_bound,
)


def exact_cdf(k: int, n: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


@pytest.mark.parametrize("n", [1, 2, 7, 21, 60])
@pytest.mark.parametrize("p", [Fraction(1, 2), Fraction(95, 100), Fraction(99, 100), Fraction(1, 10)])
def test_binomial_cdf_matches_exact_enumeration(n: int, p: Fraction) -> None:
    for k in range(-1, n + 1):
        assert binomial_cdf(k, n, float(p)) == pytest.approx(float(exact_cdf(k, n, p)), rel=1e-9, abs=1e-14)


def test_binomial_cdf_large_n_against_normal_approximation() -> None:
    n, p = 100_000, 0.99
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    assert binomial_cdf(round(mean), n, p) == pytest.approx(0.5, abs=0.02)
    assert binomial_cdf(round(mean - 3 * sd), n, p) == pytest.approx(0.00135, rel=0.35)
    assert binomial_cdf(round(mean - 30 * sd), n, p) == 0.0


def test_lower_rank_is_the_largest_rank_with_enough_confidence() -> None:
    for n, q, confidence in [(21, 0.5, 0.995), (200, 0.99, 0.999), (100, 0.95, 0.999), (5, 0.5, 0.9)]:
        rank = quantile_lower_rank(n, q, confidence)
        assert rank is not None
        assert 1 - binomial_cdf(rank - 1, n, q) >= confidence
        assert rank == n or 1 - binomial_cdf(rank, n, q) < confidence


def test_upper_rank_is_the_smallest_rank_with_enough_confidence() -> None:
    for n, q, confidence in [(300, 0.99, 0.95), (100, 0.95, 0.95), (21, 0.5, 0.99)]:
        rank = quantile_upper_rank(n, q, confidence)
        assert rank is not None
        assert binomial_cdf(rank - 1, n, q) >= confidence
        assert rank == 1 or binomial_cdf(rank - 2, n, q) < confidence


def test_too_few_samples_give_no_bound() -> None:
    assert quantile_upper_rank(200, 0.99, 0.95) is None  # 1 - 0.99**200 = 0.866 < 0.95
    assert samples_needed_for_upper_bound(0.99, 0.95) == 299
    assert quantile_upper_rank(299, 0.99, 0.95) == 299
    assert quantile_lower_rank(3, 0.5, 0.99) is None  # P(all three above the median) = 1/8
    assert median_interval([1.0, 2.0, 3.0], 0.99).low is None


def test_median_interval_of_21_rounds_is_ranks_5_and_17() -> None:
    interval = median_interval([float(value) for value in range(21, 0, -1)], 0.99)
    assert (interval.median, interval.low, interval.high) == (11.0, 5.0, 17.0)


def test_bounds_cover_the_true_quantile_as_often_as_promised() -> None:
    """Exponential samples: the true 0.95-quantile is -ln(0.05); count misses over 2000 trials."""
    rng = random.Random(7)
    truth = -math.log(0.05)
    lower_misses = upper_misses = 0
    trials = 2000
    for _ in range(trials):
        values = sorted(rng.expovariate(1.0) for _ in range(120))
        bounds = quantile_bounds(values, 0.95, lower_confidence=0.99, upper_confidence=0.95)
        assert bounds.lower is not None and bounds.upper is not None
        lower_misses += bounds.lower > truth
        upper_misses += bounds.upper < truth
    assert lower_misses / trials <= 0.01 + 0.007
    assert upper_misses / trials <= 0.05 + 0.015
    assert upper_misses > 0  # the bounds are not trivially wide


def test_median_interval_coverage() -> None:
    rng = random.Random(11)
    misses = 0
    for _ in range(2000):
        interval = median_interval([rng.lognormvariate(1.0, 0.8) for _ in range(21)], 0.99)
        assert interval.low is not None and interval.high is not None
        misses += not interval.low <= math.e <= interval.high
    assert misses / 2000 <= 0.01 + 0.006


def test_quantile_estimate_is_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert quantile_bounds(values, 0.95, 0.99, 0.99).estimate == 95.0
    assert quantile_bounds(values, 0.5, 0.99, 0.99).estimate == 50.0
    with pytest.raises(ValueError):
        quantile_bounds([], 0.5, 0.99, 0.99)


def test_loglog_slope() -> None:
    sizes = [100, 1_000, 10_000, 100_000]
    assert loglog_slope(sizes, [0.2, 0.2, 0.2, 0.2]) == pytest.approx(0.0)
    assert loglog_slope(sizes, [size * 0.001 for size in sizes]) == pytest.approx(1.0)
    assert loglog_slope(sizes, [math.sqrt(size) for size in sizes]) == pytest.approx(0.5)
    assert loglog_slope(sizes, [0.0, 0.1, 0.2, 0.4]) > 0  # a zero time is floored, not a math error
    with pytest.raises(ValueError):
        loglog_slope([10], [1.0])
    with pytest.raises(ValueError):
        loglog_slope([10, 10], [1.0, 2.0])
