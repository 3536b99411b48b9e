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

from ..metrics import COMMANDS, FIXTURE, METRICS, READS, WRITES, format_metric
from ..observe.summary import PatternSummary, RunSummary
from .base import INCONCLUSIVE, NOT_ENFORCED
from .statistics import quantile_lower_rank
from .target_file import Target

MET = "met"
MISSED = "missed"
NO_DATA = "no data"
_CONFIDENCE = 0.999


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
        return METRICS[self.metric].floor

    @property
    def limit_text(self) -> str:
        return METRICS[self.metric].limit_text(self.limit)

    @property
    def value_text(self) -> str:
        return format_metric(self.metric, self.value)

    @property
    def failed(self) -> bool:
        return self.status in (MISSED, NO_DATA)


def evaluate_targets(targets: Sequence[Target], summary: RunSummary, enforce_timing: bool = True) -> list[TargetResult]:
    """Every limit of every target, in file order."""
    results = []
    for target in targets:
        stats = summary.patterns.get(target.pattern, PatternSummary())
        for name, limit in target.limits:
            metric = METRICS[name]
            value, evidence = _measured(name, stats)
            where = "all keys" if target.pattern == "*" else f"keys matching {target.pattern!r}"
            if value is None:
                status = NO_DATA
                detail = f"the run never measured {name} for {where}; {metric.measured_by} would"
            else:
                ok = metric.meets(value, limit)
                status = MET if ok else MISSED
                detail = evidence
                if not ok and metric.quantile is not None:
                    status, detail = _percentile_evidence(stats, name, metric.quantile, limit, evidence)
                if status == MISSED and metric.timing and not enforce_timing:
                    status, detail = NOT_ENFORCED, f"{detail}; not enforced (--cache-timing report)"
            results.append(TargetResult(target.name, target.pattern, name, value, limit, status, detail))
    return results


def _percentile_evidence(
    stats: PatternSummary, metric: str, quantile: float, limit: float, evidence: str
) -> tuple[str, str]:
    """``missed`` when even the percentile's lower confidence bound is above the ceiling."""
    latency = stats.latency
    rank = quantile_lower_rank(latency.count, quantile, _CONFIDENCE)
    bound = latency.value_at_rank_ms(rank) if rank is not None else None
    if bound is not None and bound > limit:
        return MISSED, f"{evidence}; lower bound {format_metric(metric, bound)} at 99.9% confidence"
    shown = "too few commands for a lower bound" if bound is None else f"lower bound {format_metric(metric, bound)}"
    return INCONCLUSIVE, f"{evidence}; {shown} at 99.9% confidence: not clear evidence of a miss"


def _measured(name: str, stats: PatternSummary) -> tuple[float | None, str]:
    """The run's value of metric ``name`` for one pattern and a short account of where it comes from."""
    metric = METRICS[name]
    if metric.source == READS:
        top = ", ".join(f"{shape} ({count})" for shape, count in stats.miss_shapes.most_common(3))
        account = f"{stats.hits} hits, {stats.misses} misses" + (f"; most misses: {top}" if top else "")
        return stats.hit_rate, account
    if metric.source == COMMANDS:
        latency = stats.latency
        value = latency.percentile_ms(metric.quantile) if metric.quantile is not None else latency.max_ns / 1e6
        return (value if latency.count else None), f"over {latency.count} commands"
    if metric.source == WRITES:
        if not stats.keys_written:
            return None, ""
        examples = ", ".join(stats.ttl_examples)
        account = f"{stats.keys_without_ttl} of {stats.keys_written} keys written have no TTL"
        return stats.keys_without_ttl, account + (f", e.g. {examples}" if examples else "")
    assert metric.source == FIXTURE
    aggregate = stats.measured.get(name)
    if aggregate is None:
        return None, ""
    worst = f"worst {metric.format(aggregate.worst)} in {aggregate.worst_nodeid}"
    return aggregate.value, f"{aggregate.count} measurement(s); {worst}"
