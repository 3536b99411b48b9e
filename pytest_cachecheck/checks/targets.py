"""Run-wide targets (``--cache-targets``): each target's limits against the merged run summary.

A limit is ``met``, ``missed``, or ``no data`` when the run never measured its metric
for the target's keys; ``no data`` counts as missed (a claim nobody checked is not
met) and says which fixture or kind of test would measure it. A latency percentile
above its ceiling is ``missed`` only on clear evidence, as with ``cache_latency``: its
99.9% lower confidence bound is above the ceiling too; otherwise it is
``inconclusive``, shown but not failing the run (timing on shared CI machines is noisy).
With ``--cache-timing report``, a missed limit on a clock-measured metric (latency,
invalidation time, speedup) is ``not enforced``: shown, not failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import TARGET_METRICS, Target
from ..observe.summary import PatternSummary, RunSummary
from .base import INCONCLUSIVE, NOT_ENFORCED
from .statistics import quantile_lower_rank

MET = "met"
MISSED = "missed"
NO_DATA = "no data"
_CONFIDENCE = 0.999

_PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}

_HOW_TO_MEASURE = {
    "hit_rate": "reads through a redis-py client (cache_redis, cache_url or the app's own client)",
    "p50_ms": "commands through a redis-py client",
    "p95_ms": "commands through a redis-py client",
    "p99_ms": "commands through a redis-py client",
    "max_ms": "commands through a redis-py client",
    "invalidation_ms": "a test calling cache_invalidation.measure(...)",
    "stale_reads": "a test using cache_consistency (run(...) or check())",
    "speedup": "a test calling cache_bench.speedup(...)",
    "keys_without_ttl": "writes through a redis-py client",
    "max_fills": "a test with @pytest.mark.cache_stampede or calling cache_bench.stampede(...)",
    "errors": "commands through a redis-py client",
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


def _measured(metric: str, stats: PatternSummary) -> tuple[float | None, str]:
    """The run's value of ``metric`` for one pattern and a short account of where it comes from."""
    if metric == "hit_rate":
        top = ", ".join(f"{shape} ({count})" for shape, count in stats.miss_shapes.most_common(3))
        account = f"{stats.hits} hits, {stats.misses} misses" + (f"; most misses: {top}" if top else "")
        return stats.hit_rate, account
    if metric in _PERCENTILES or metric == "max_ms":
        latency = stats.latency
        value = latency.max_ns / 1e6 if metric == "max_ms" else latency.percentile_ms(_PERCENTILES[metric])
        return (value if latency.count else None), f"over {latency.count} commands"
    if metric == "keys_without_ttl":
        if not stats.keys_written:
            return None, ""
        examples = ", ".join(stats.ttl_examples)
        account = f"{stats.keys_without_ttl} of {stats.keys_written} keys written have no TTL"
        return stats.keys_without_ttl, account + (f", e.g. {examples}" if examples else "")
    if metric == "errors":
        commands = stats.command_count
        return (stats.errors if commands else None), f"{stats.errors} of {commands} commands failed"
    aggregate = stats.measured.get(metric)
    if aggregate is None:
        return None, ""
    worst = f"worst {format_metric(metric, aggregate.worst)} in {aggregate.worst_nodeid}"
    return aggregate.value, f"{aggregate.count} measurement(s); {worst}"
