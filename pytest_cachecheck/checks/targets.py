"""Run-wide targets (``--cache-targets``): each target's limits against the merged run summary.

A limit is ``met``, ``missed``, or ``no data`` when the run never measured its metric
for the target's keys; ``no data`` counts as missed (a claim nobody checked is not
met) and says which fixture or kind of test would measure it. A latency percentile
above its ceiling is ``missed`` only on clear evidence, as with ``cache_latency``: its
99.9% lower confidence bound is above the ceiling too (the mean: its DKW/Anderson bound);
otherwise it is ``inconclusive``, shown but not failing the run (timing on shared CI machines
is noisy). Every timing limit is also read against the baseline probes of the tests that
touched the target's keys (``baseline.py``): a miss while the machine's own round trip was
itself over the limit at the same statistic is ``inconclusive`` too.
With ``--cache-timing report``, a missed limit on a clock-measured metric (latency,
invalidation time, speedup) is ``not enforced``: shown, not failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import TARGET_METRICS, Target
from ..observe.summary import LatencyHistogram, PatternSummary, RunSummary
from .base import INCONCLUSIVE, NOT_ENFORCED
from .baseline import QUANTILES, Baseline, explained
from .statistics import quantile_lower_rank

MET = "met"
MISSED = "missed"
NO_DATA = "no data"
_CONFIDENCE = 0.999

_PERCENTILES = {name: q for name, q in QUANTILES.items() if q is not None and q < 1}
# The baseline statistic each timing limit is read against: the same statistic of the probes.
_BASELINE_STATISTIC = {
    **{name: name for name in QUANTILES},
    "invalidation_ms": "max_ms",
    "invalidation_mean_ms": "mean_ms",
}

_HOW_TO_MEASURE = {
    "hit_rate": "reads through a redis-py client (cache_redis, cache_url or the app's own client)",
    "mean_ms": "commands through a redis-py client",
    "p50_ms": "commands through a redis-py client",
    "p95_ms": "commands through a redis-py client",
    "p99_ms": "commands through a redis-py client",
    "p999_ms": "commands through a redis-py client",
    "max_ms": "commands through a redis-py client",
    "invalidation_ms": "a test calling cache_invalidation.measure(...)",
    "invalidation_mean_ms": "a test calling cache_invalidation.measure(...)",
    "stale_reads": "a test using cache_consistency (run(...) or check())",
    "speedup": "a test calling cache_bench.speedup(...)",
    "keys_without_ttl": "writes through a redis-py client",
}


def format_metric(metric: str, value: float | None) -> str:
    """A metric's value as people write it: ``91.2%``, ``0.353 ms``, ``3``, ``1.13x``."""
    if value is None:
        return "-"
    kind = TARGET_METRICS[metric].kind if metric in TARGET_METRICS else "ratio"
    if kind == "fraction":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    if kind == "count":
        return f"{int(value)}"
    return f"{value:.2f}x"


@dataclass(frozen=True)
class TargetResult:
    """One limit of one target, evaluated."""

    target: str
    pattern: str
    metric: str
    value: float | None
    limit: float
    status: str
    detail: str

    @property
    def minimum(self) -> bool:
        return TARGET_METRICS[self.metric].minimum

    @property
    def limit_text(self) -> str:
        return f"{'>=' if self.minimum else '<='} {format_metric(self.metric, self.limit)}"

    @property
    def value_text(self) -> str:
        return format_metric(self.metric, self.value)

    @property
    def failed(self) -> bool:
        return self.status in (MISSED, NO_DATA)

    def one_line(self) -> str:
        """``analytics hit_rate 50.0% (target >= 80.0%): missed``, for the last lines of output."""
        return f"{self.target} {self.metric} {self.value_text} (target {self.limit_text}): {self.status}"


def evaluate_targets(targets: Sequence[Target], summary: RunSummary, enforce_timing: bool = True) -> list[TargetResult]:
    """Every limit of every target, in file order."""
    results = []
    for target in targets:
        stats = summary.patterns.get(target.pattern, PatternSummary())
        for metric, limit in target.limits:
            value, evidence = _measured(metric, stats)
            where = "all keys" if target.pattern == "*" else f"keys matching {target.pattern!r}"
            if value is None:
                status = NO_DATA
                detail = f"the run never measured {metric} for {where}; {_HOW_TO_MEASURE[metric]} would"
            else:
                ok = value >= limit if TARGET_METRICS[metric].minimum else value <= limit
                status = MET if ok else MISSED
                detail = evidence
                if not ok and metric in _PERCENTILES:
                    status, detail = _percentile_evidence(stats, metric, limit, evidence)
                if not ok and metric in ("mean_ms", "invalidation_mean_ms"):
                    status, detail = _mean_evidence(stats, metric, limit, evidence)
                if metric in _BASELINE_STATISTIC:
                    status, detail = _against_baseline(stats, metric, limit, status, detail)
                if status == MISSED and TARGET_METRICS[metric].timing and not enforce_timing:
                    status, detail = NOT_ENFORCED, f"{detail}; not enforced (--cache-timing report)"
            results.append(TargetResult(target.name, target.pattern, metric, value, limit, status, detail))
    return results


def _percentile_evidence(stats: PatternSummary, metric: str, limit: float, evidence: str) -> tuple[str, str]:
    """``missed`` when even the percentile's lower confidence bound is above the ceiling."""
    latency = stats.latency
    rank = quantile_lower_rank(latency.count, _PERCENTILES[metric], _CONFIDENCE)
    bound = latency.value_at_rank_ms(rank) if rank is not None else None
    if bound is not None and bound > limit:
        return MISSED, f"{evidence}; lower bound {format_metric(metric, bound)} at 99.9% confidence"
    shown = "too few commands for a lower bound" if bound is None else f"lower bound {format_metric(metric, bound)}"
    return INCONCLUSIVE, f"{evidence}; {shown} at 99.9% confidence: not clear evidence of a miss"


def _mean_evidence(stats: PatternSummary, metric: str, limit: float, evidence: str) -> tuple[str, str]:
    """``missed`` when the mean's distribution-free lower bound is above the ceiling."""
    if metric == "mean_ms":
        histogram = stats.latency
    else:
        histogram = stats.measured["invalidation_ms"].histogram
    bound = histogram.mean_lower_bound_ms(_CONFIDENCE)
    if bound is not None and bound > limit:
        return MISSED, f"{evidence}; lower bound {format_metric(metric, bound)} at 99.9% confidence"
    shown = "too few samples for a lower bound" if bound is None else f"lower bound {format_metric(metric, bound)}"
    return INCONCLUSIVE, f"{evidence}; {shown} at 99.9% confidence: not clear evidence of a miss"


def _baseline(histogram: LatencyHistogram) -> Baseline:
    """The run's baseline probes for one pattern, as estimates of each statistic."""
    if not histogram.count:
        return Baseline()
    estimates = []
    for name, fraction in QUANTILES.items():
        if fraction is None:
            value = histogram.mean_ms()
        elif fraction == 1.0:
            value = histogram.max_ns / 1e6
        else:
            value = histogram.percentile_ms(fraction)
        if value is not None:
            estimates.append((name, value))
    return Baseline(estimates=tuple(estimates), count=histogram.count)


def _against_baseline(stats: PatternSummary, metric: str, limit: float, status: str, detail: str) -> tuple[str, str]:
    """A clear miss while the baseline was itself over the limit is ``inconclusive``; the baseline is shown."""
    baseline, statistic = _baseline(stats.baseline), _BASELINE_STATISTIC[metric]
    if status == MISSED and baseline.over(statistic, limit):
        return INCONCLUSIVE, f"{detail}; {explained(statistic, limit, baseline)}"
    return status, f"{detail}; {baseline.describe(statistic)}"


def _measured(metric: str, stats: PatternSummary) -> tuple[float | None, str]:
    """The run's value of ``metric`` for one pattern and a short account of where it comes from."""
    if metric == "hit_rate":
        top = ", ".join(f"{shape} ({count})" for shape, count in stats.miss_shapes.most_common(3))
        account = f"{stats.hits} hits, {stats.misses} misses" + (f"; most misses: {top}" if top else "")
        return stats.hit_rate, account
    if metric in QUANTILES:
        latency = stats.latency
        if metric == "max_ms":
            value: float | None = latency.max_ns / 1e6
        elif metric == "mean_ms":
            value = latency.mean_ms()
        else:
            value = latency.percentile_ms(_PERCENTILES[metric])
        return (value if latency.count else None), f"over {latency.count} commands"
    if metric == "invalidation_mean_ms":
        measured = stats.measured.get("invalidation_ms")
        if measured is None:
            return None, ""
        return measured.mean, f"mean of {measured.count} measurement(s)"
    if metric == "keys_without_ttl":
        if not stats.keys_written:
            return None, ""
        examples = ", ".join(stats.ttl_examples)
        account = f"{stats.keys_without_ttl} of {stats.keys_written} keys written have no TTL"
        return stats.keys_without_ttl, account + (f", e.g. {examples}" if examples else "")
    aggregate = stats.measured.get(metric)
    if aggregate is None:
        return None, ""
    worst = f"worst {format_metric(metric, aggregate.worst)} in {aggregate.worst_nodeid}"
    return aggregate.value, f"{aggregate.count} measurement(s); {worst}"
