"""The machine's own round trip over the same seconds, and the rule that reads timing verdicts against it.

The instrumentation takes a baseline probe beside the code's commands (one ``PING`` on the
same client, thread or event loop, past every interceptor; about 1% of the commands' time,
see ``observe.instrument``). A ``PING`` is the cheapest round trip any cache layer can make on
this backend, so its distribution over the seconds a test ran is what the machine alone
(scheduler, event loop, loopback, server) added to every command.

The rule (derived in ``docs/timing-checks.md``): a ceiling that the code's commands missed
clearly is ``inconclusive`` instead of ``failed`` when the same statistic of the baseline over
the same seconds was itself above the ceiling: then no cache layer could have met it on this
machine at that moment, so the miss says nothing about the code. A regression of the code (a
slow script, an O(N) command, a sleep or an injected latency in the cache path) slows the code's
commands and not the ``PING`` beside them, so it still fails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..metrics import LATENCY_CEILINGS

# The statistics a latency ceiling can set (the registry's COMMANDS metrics): a percentile's
# fraction, 1.0 for the maximum, None for the mean.
QUANTILES: dict[str, float | None] = {
    metric.name: 1.0 if metric.statistic == "max" else metric.quantile for metric in LATENCY_CEILINGS
}


def label(metric: str) -> str:
    """``p99_ms`` -> ``p99``, ``p999_ms`` -> ``p99.9``, ``mean_ms`` -> ``mean``."""
    return {"p999_ms": "p99.9"}.get(metric, metric.removesuffix("_ms"))


def estimate(sorted_values: Sequence[float], metric: str) -> float:
    """The mean, or the nearest-rank percentile (``max_ms``: the largest value), of sorted samples."""
    if not sorted_values:
        raise ValueError("statistic of no values")
    fraction = QUANTILES[metric]
    if fraction is None:
        return math.fsum(sorted_values) / len(sorted_values)
    return sorted_values[max(1, math.ceil(fraction * len(sorted_values))) - 1]


@dataclass(frozen=True)
class Baseline:
    """Baseline probes over some seconds, in milliseconds (sorted); ``estimates`` when only a
    summary is known (run-wide: a histogram), by metric name."""

    durations_ms: tuple[float, ...] = ()
    estimates: tuple[tuple[str, float], ...] = ()
    count: int = 0

    @classmethod
    def of(cls, durations_ms: Sequence[float]) -> Baseline:
        ordered = tuple(sorted(durations_ms))
        return cls(ordered, count=len(ordered))

    def value(self, metric: str) -> float | None:
        """The baseline's ``metric`` (None without probes)."""
        if self.durations_ms:
            return estimate(self.durations_ms, metric)
        return dict(self.estimates).get(metric)

    def over(self, metric: str, ceiling: float) -> bool:
        """The rule: the machine's own round trip missed the ceiling at the same statistic."""
        value = self.value(metric)
        return value is not None and value > ceiling

    def describe(self, metric: str) -> str:
        """``this machine's own round trip p99 over the same seconds: 8.9 ms (14 probes)``."""
        value = self.value(metric)
        if value is None:
            return "no baseline round trip was sampled over the same seconds (no plain-client command)"
        seconds = "this machine's own round trip"
        return f"{seconds} {label(metric)} over the same seconds: {value:.3f} ms ({self.count} probes)"


def over_span(probes: Sequence[tuple[int, int]], start_ns: int, end_ns: int) -> Baseline:
    """The probes that ran between ``start_ns`` and ``end_ns`` (the judged commands' seconds)."""
    return Baseline.of([duration / 1e6 for start, duration in probes if start_ns <= start <= end_ns])


def explained(metric: str, ceiling: float, baseline: Baseline) -> str:
    """The sentence an inconclusive verdict adds when the baseline itself was over the ceiling."""
    return (
        f"{baseline.describe(metric)}, itself above the ceiling {ceiling:g} ms: this machine could not meet it "
        "then, whatever the code, so the miss is not evidence against the code (rerun on a quieter machine)"
    )
