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

from ..metrics import (
    COMMANDS,
    FIXTURE,
    KB,
    MEMORY,
    METRICS,
    OUTCOMES,
    READS,
    VALUES,
    WRITES,
    format_bytes,
    format_metric,
)
from ..observe.memory import ESTIMATED, MEASURED
from ..observe.patterns import shown_key
from ..observe.summary import PatternSummary, RunSummary
from ..text import plural
from .base import INCONCLUSIVE, NOT_ENFORCED
from .baseline import Baseline, explained
from .bounds import quantile_lower_rank
from .hit_rate import hits_text
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
                if not ok and metric.statistic == "mean":
                    status, detail = _mean_evidence(stats, name, limit, evidence)
                if metric.baseline_statistic is not None:
                    status, detail = _against_baseline(stats, name, limit, status, detail)
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


def _mean_evidence(stats: PatternSummary, name: str, limit: float, evidence: str) -> tuple[str, str]:
    """``missed`` when the mean's distribution-free lower bound is above the ceiling."""
    metric = METRICS[name]
    histogram = stats.latency if metric.source == COMMANDS else stats.measured[metric.of].histogram
    bound = histogram.mean_lower_bound_ms(_CONFIDENCE)
    if bound is not None and bound > limit:
        return MISSED, f"{evidence}; lower bound {format_metric(name, bound)} at 99.9% confidence"
    shown = "too few samples for a lower bound" if bound is None else f"lower bound {format_metric(name, bound)}"
    return INCONCLUSIVE, f"{evidence}; {shown} at 99.9% confidence: not clear evidence of a miss"


def _against_baseline(stats: PatternSummary, name: str, limit: float, status: str, detail: str) -> tuple[str, str]:
    """A clear miss while the baseline was itself clearly over the limit is ``inconclusive``; the baseline is shown."""
    metric = METRICS[name]
    baseline, statistic = Baseline.of_histogram(stats.baseline), metric.baseline_statistic
    assert statistic is not None  # the caller judges only metrics with a baseline statistic
    judged = stats.measured.get(metric.of or name)
    samples = stats.latency.count if metric.source == COMMANDS else (judged.histogram.count if judged else 0)
    if status == MISSED and baseline.over(statistic, limit, samples):
        return INCONCLUSIVE, f"{detail}; {explained(statistic, limit, baseline, samples)}"
    if status == MISSED:
        return status, f"{detail}; {baseline.unexplained(statistic, limit, samples)}"
    return status, f"{detail}; {baseline.describe(statistic)}"


def _measured(name: str, stats: PatternSummary) -> tuple[float | None, str]:
    """The run's value of metric ``name`` for one pattern and a short account of where it comes from."""
    metric = METRICS[name]
    if metric.source == READS:
        top = ", ".join(f"{shape} ({count})" for shape, count in stats.miss_shapes.most_common(3))
        counts = f"{hits_text(stats.hits, stats.local_hits)}, {plural(stats.misses, 'miss', 'misses')}"
        account = counts + (f"; most misses: {top}" if top else "")
        return stats.hit_rate, account
    if metric.source == COMMANDS:
        latency = stats.latency
        if not latency.count:
            return None, f"over {latency.count} commands"
        if metric.statistic == "mean":
            return latency.mean_ms(), f"over {latency.count} commands"
        if metric.statistic == "percentile" and metric.quantile is not None:
            return latency.percentile_ms(metric.quantile), f"over {latency.count} commands"
        if metric.statistic == "max":
            return latency.max_ns / 1e6, f"over {latency.count} commands"
        raise NotImplementedError(f"metric {name!r}: statistic {metric.statistic!r} has no measurement here")
    if metric.source == WRITES:
        if not stats.keys_written:
            return None, ""
        examples = ", ".join(stats.ttl_examples)
        account = f"{stats.keys_without_ttl} of {stats.keys_written} keys written have no TTL"
        return stats.keys_without_ttl, account + (f", e.g. {examples}" if examples else "")
    if metric.source == OUTCOMES:
        commands = stats.command_count
        return (stats.errors if commands else None), f"{stats.errors} of {commands} commands failed"
    if metric.source == VALUES:
        if stats.max_value_bytes is None:
            return None, ""
        biggest = f"largest {shown_key(stats.max_value_key)} in {stats.max_value_nodeid}"
        return stats.max_value_bytes, f"{biggest}; {format_bytes(stats.bytes_written)} written in all"
    if metric.source == MEMORY:
        if stats.memory_bytes is None:
            return None, ""
        source = ESTIMATED if stats.memory_estimated else MEASURED
        account = f"{stats.memory_keys} keys at the end of {stats.memory_nodeid}, the largest test ({source})"
        return stats.memory_bytes / KB, account
    assert metric.source == FIXTURE
    if metric.statistic == "mean":
        measured = stats.measured.get(metric.of)
        if measured is None:
            return None, ""
        return measured.mean, f"mean of {measured.count} measurement(s)"
    aggregate = stats.measured.get(name)
    if aggregate is None:
        return None, ""
    worst = f"worst {metric.format(aggregate.worst)} in {aggregate.worst_nodeid}"
    return aggregate.value, f"{aggregate.count} measurement(s); {worst}"
