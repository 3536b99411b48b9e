"""The maths behind the timing checks: distribution-free confidence bounds from order statistics.

Timings on a shared CI machine are neither normal nor stable, so no distribution is
assumed. For ``n`` independent samples, the ``r``-th smallest sample lies below the
true ``q``-quantile exactly when at least ``r`` samples do, and the number of samples
below it is Binomial(n, q). That gives exact bounds for any percentile (latency
ceilings) and for the median (paired speedup ratios) from the binomial tail alone,
which is implemented here so that scipy is not a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Terms further below the mean than this many standard deviations (plus a slack for skewed
# small samples, whose tails are heavier than a normal's) add less than 1e-40: they are skipped.
_TAIL_SIGMAS = 14.0
_TAIL_SLACK = 40


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(B <= k) for B ~ Binomial(n, p), summed in a numerically safe way."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    mean = n * p
    spread = _TAIL_SIGMAS * math.sqrt(n * p * (1.0 - p)) + _TAIL_SLACK
    first = max(0, math.floor(mean - spread))
    if k < first:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    term = math.exp(
        math.lgamma(n + 1) - math.lgamma(first + 1) - math.lgamma(n - first + 1) + first * log_p + (n - first) * log_q
    )
    odds = p / (1.0 - p)
    total = 0.0
    for successes in range(first, k + 1):
        total += term
        term *= (n - successes) / (successes + 1) * odds
    return min(total, 1.0)


def quantile_lower_rank(n: int, q: float, confidence: float) -> int | None:
    """Largest 1-based rank r with P(X(r) <= true q-quantile) >= confidence; None if even X(1) is not.

    X(r) <= quantile iff at least r samples fall at or below it: P = P(Binomial(n, q) >= r).
    """
    alpha = 1.0 - confidence
    if n < 1 or binomial_cdf(0, n, q) > alpha:
        return None
    low, high = 1, n  # invariant: P(B <= low - 1) <= alpha
    while low < high:
        middle = (low + high + 1) // 2
        if binomial_cdf(middle - 1, n, q) <= alpha:
            low = middle
        else:
            high = middle - 1
    return low


def quantile_upper_rank(n: int, q: float, confidence: float) -> int | None:
    """Smallest 1-based rank s with P(X(s) >= true q-quantile) >= confidence; None if even X(n) is not.

    X(s) >= quantile iff fewer than s samples fall below it: P = P(Binomial(n, q) <= s - 1).
    """
    if n < 1 or binomial_cdf(n - 1, n, q) < confidence:
        return None
    low, high = 1, n  # invariant: P(B <= high - 1) >= confidence
    while low < high:
        middle = (low + high) // 2
        if binomial_cdf(middle - 1, n, q) >= confidence:
            high = middle
        else:
            low = middle + 1
    return low


def samples_needed_for_upper_bound(q: float, confidence: float) -> int:
    """Fewest samples for which any upper bound of the q-quantile exists: 1 - q**n >= confidence."""
    return max(1, math.ceil(math.log(1.0 - confidence) / math.log(q)))


@dataclass(frozen=True)
class QuantileBounds:
    """A nearest-rank percentile with one-sided confidence bounds (None when ``n`` is too small)."""

    q: float
    n: int
    estimate: float
    lower: float | None
    upper: float | None


def quantile_bounds(
    sorted_values: Sequence[float], q: float, lower_confidence: float, upper_confidence: float
) -> QuantileBounds:
    """The q-quantile of sorted samples, its lower bound at ``lower_confidence``, its upper at ``upper_confidence``."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    estimate = sorted_values[max(1, math.ceil(q * n)) - 1]
    lower_rank = quantile_lower_rank(n, q, lower_confidence)
    upper_rank = quantile_upper_rank(n, q, upper_confidence)
    return QuantileBounds(
        q=q,
        n=n,
        estimate=estimate,
        lower=sorted_values[lower_rank - 1] if lower_rank is not None else None,
        upper=sorted_values[upper_rank - 1] if upper_rank is not None else None,
    )


@dataclass(frozen=True)
class MedianInterval:
    """Median with a two-sided distribution-free confidence interval (bounds None when ``n`` is too small)."""

    median: float
    low: float | None
    high: float | None
    confidence: float
    n: int


def median_interval(values: Sequence[float], confidence: float = 0.99) -> MedianInterval:
    """Median of ``values`` and the interval [X(k), X(n+1-k)] that covers the true median.

    k is the largest rank with P(Binomial(n, 1/2) <= k - 1) <= (1 - confidence) / 2, so the
    interval's coverage is at least ``confidence`` whatever the distribution (sign test).
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    rank = quantile_lower_rank(n, 0.5, 1.0 - (1.0 - confidence) / 2)
    if rank is None:
        return MedianInterval(median, None, None, confidence, n)
    return MedianInterval(median, ordered[rank - 1], ordered[n - rank], confidence, n)


def loglog_slope(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) against log(size): ~0 for O(1), ~1 for O(n)."""
    if len(sizes) != len(times) or len(sizes) < 2:
        raise ValueError("a slope needs at least two (size, time) points")
    floor = min((time for time in times if time > 0), default=1e-9)
    xs = [math.log(size) for size in sizes]
    ys = [math.log(max(time, floor)) for time in times]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        raise ValueError("a slope needs at least two different sizes")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def mean_lower_bound(sorted_values: Sequence[float], confidence: float) -> float | None:
    """Distribution-free lower confidence bound of the mean of a non-negative quantity (a duration).

    The one-sided Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant gives, for any
    distribution, P(F(t) <= F_n(t) + eps for all t) >= confidence with
    eps = sqrt(ln(1 / (1 - confidence)) / (2 n)). For X >= 0, E[X] is the integral of 1 - F, so
    E[X] >= integral of max(0, 1 - F_n(t) - eps) (Anderson's bound): the empirical survival curve
    lowered by eps. No variance, no normality: one huge sample (a scheduler hiccup) moves the bound
    by at most its share 1/n of the area, and the top eps of the samples never count at all, so a
    heavy tail cannot produce a false failure. None when eps >= 1 (too few samples to bound anything).
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("mean of no values")
    eps = math.sqrt(math.log(1.0 / (1.0 - confidence)) / (2.0 * n))
    if eps >= 1.0:
        return None
    bound, previous = 0.0, 0.0
    for index, value in enumerate(sorted_values):
        height = (n - index) / n - eps
        if height <= 0:
            break
        bound += (max(value, 0.0) - previous) * height
        previous = max(value, previous)
    return bound


def _student_t_quantile(confidence: float, freedom: int) -> float:
    """Upper ``confidence`` quantile of Student's t (Cornish-Fisher expansion; within 1% from 5 degrees on)."""
    z = _normal_quantile(confidence)
    nu = float(freedom)
    return z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)


def _normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on ``math.erf`` (exact to 1e-12)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        middle = (low + high) / 2
        if 0.5 * (1 + math.erf(middle / math.sqrt(2))) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def mean_upper_bound(values: Sequence[float], confidence: float) -> float | None:
    """Student-t upper confidence bound of the mean; None below 6 samples.

    Only used to *pass* a ceiling (an unproven pass is a warning, never a red build). On
    right-skewed timings its coverage is below nominal when the sample missed the tail, which is
    why failing uses ``mean_lower_bound`` instead.
    """
    n = len(values)
    if n < 6:
        return None
    mean = sum(values) / n
    variance = sum((value - mean) ** 2 for value in values) / (n - 1)
    return mean + _student_t_quantile(confidence, n - 1) * math.sqrt(variance / n)
