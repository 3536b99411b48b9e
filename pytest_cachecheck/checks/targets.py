"""Run-wide targets (``--cache-targets``): each target's limits against the merged run summary.

A limit is ``met``, ``missed``, or ``no data`` when the run never measured its metric
for the target's keys; ``no data`` counts as missed (a claim nobody checked is not
met) and says which fixture or kind of test would measure it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import TARGET_METRICS, Target
from ..observe.summary import PatternSummary, RunSummary

MET = "met"
MISSED = "missed"
NO_DATA = "no data"

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
        return self.status != MET

    def one_line(self) -> str:
        """``analytics hit_rate 50.0% (target >= 80.0%): missed``, for the last lines of output."""
        return f"{self.target} {self.metric} {self.value_text} (target {self.limit_text}): {self.status}"


def evaluate_targets(targets: Sequence[Target], summary: RunSummary) -> list[TargetResult]:
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
            results.append(TargetResult(target.name, target.pattern, metric, value, limit, status, detail))
    return results


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
    aggregate = stats.measured.get(metric)
    if aggregate is None:
        return None, ""
    worst = f"worst {format_metric(metric, aggregate.worst)} in {aggregate.worst_nodeid}"
    return aggregate.value, f"{aggregate.count} measurement(s); {worst}"
