"""The machine's own round trip over the same seconds, and the rule that reads timing verdicts against it.

The instrumentation takes a baseline probe beside the code's commands (one ``PING`` on the
same client, thread or event loop, past every interceptor; about 1% of the commands' time,
see ``observe.instrument``). A ``PING`` is the cheapest round trip any cache layer can make on
this backend, so its distribution over the seconds a test ran is what the machine alone
(scheduler, event loop, loopback, server) added to every command.

The rule (derived in ``docs/timing-checks.md``): a ceiling that the code's commands missed
clearly is ``inconclusive`` instead of ``failed`` when the baseline over the same seconds was
itself above the ceiling at the same statistic, shown with the same standard of evidence as
the code's miss: then no cache layer could have met it on this machine at that moment, so the
miss says nothing about the code. For a percentile that is the probes' 99.9% lower confidence
bound of it (order statistics, ``bounds.quantile_lower_rank``), so one stalled probe among a
few dozen cannot set it; a maximum over ``n`` commands is compared with the level at which the
largest of ``n`` of the machine's own round trips is as likely over a value as under it. A
regression of the code (a slow script, an O(N) command, a sleep or an injected latency in the
cache path) slows the code's commands and not the ``PING`` beside them, so it still fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..metrics import LATENCY_CEILINGS
from ..observe.summary import LatencyHistogram
from .bounds import quantile_lower_rank

# The statistics a latency ceiling can set (the registry's COMMANDS metrics): a percentile's
# fraction, 1.0 for the maximum, None for the mean.
QUANTILES: dict[str, float | None] = {
    metric.name: 1.0 if metric.statistic == "max" else metric.quantile for metric in LATENCY_CEILINGS
}
# The machine is shown over a ceiling with the confidence a failure of the code needs (latency.py).
EVIDENCE = 0.999


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


def max_level(commands: int) -> float:
    """The quantile of one round trip at which the largest of ``commands`` independent ones is as
    likely above it as below it (2 ** (-1 / n)): what a maximum over ``n`` commands is compared at."""
    return 2.0 ** (-1.0 / max(commands, 1))


@dataclass(frozen=True)
class Baseline:
    """Baseline probes over some seconds: how many, their mean and their ``rank``-th smallest
    duration (1-based, in ms), from the sorted probes of a test or a run's histogram of them."""

    count: int = 0
    mean_ms: float | None = None
    at_rank: Callable[[int], float] | None = None

    @classmethod
    def of(cls, durations_ms: Sequence[float]) -> Baseline:
        ordered = tuple(sorted(durations_ms))
        if not ordered:
            return cls()
        return cls(len(ordered), math.fsum(ordered) / len(ordered), lambda rank: ordered[rank - 1])

    @classmethod
    def of_histogram(cls, histogram: LatencyHistogram) -> Baseline:
        """A run's probes, pooled in a histogram (ranks read within its 1.6% bucket width)."""
        if not histogram.count:
            return cls()
        return cls(histogram.count, histogram.mean_ms(), histogram.value_at_rank_ms)

    def level(self, metric: str, commands: int) -> float | None:
        """The quantile of the probes that ``metric`` over ``commands`` of the code's samples is compared
        with (None: the mean)."""
        fraction = QUANTILES[metric]
        return max_level(commands) if fraction == 1.0 else fraction

    def value(self, metric: str) -> float | None:
        """The probes' own statistic (the mean, the nearest-rank percentile, the largest probe): what
        messages and reports show (None without probes)."""
        if self.at_rank is None:
            return None
        fraction = QUANTILES[metric]
        if fraction is None:
            return self.mean_ms
        return self.at_rank(max(1, math.ceil(fraction * self.count)))

    def witness(self, metric: str, commands: int = 1) -> float | None:
        """What the rule compares with the ceiling: the probes' mean; for a percentile or a maximum, the
        99.9% lower confidence bound of the probes' quantile at ``level`` (the largest rank r with
        P(Binomial(m, level) >= r) >= 99.9%), or, when the probes are too few for any such bound, the
        fastest probe (then every probe must have been over the ceiling). None without probes."""
        if self.at_rank is None:
            return None
        level = self.level(metric, commands)
        if level is None:
            return self.mean_ms
        rank = quantile_lower_rank(self.count, level, EVIDENCE)
        return self.at_rank(rank if rank is not None else 1)

    def over(self, metric: str, ceiling: float, commands: int = 1) -> bool:
        """The rule: the machine's own round trip was clearly over the ceiling at the same statistic."""
        witness = self.witness(metric, commands)
        return witness is not None and witness > ceiling

    def describe(self, metric: str) -> str:
        """``this machine's own round trip p99 over the same seconds: 8.9 ms (14 probes)``."""
        value = self.value(metric)
        if value is None:
            return "no baseline round trip was sampled over the same seconds (no plain-client command)"
        return (
            f"this machine's own round trip {label(metric)} over the same seconds: {value:.3f} ms ({self.count} probes)"
        )

    def evidence(self, metric: str, commands: int = 1) -> str:
        """What the rule compared with the ceiling, for a percentile or a maximum: ``its p99.9 at least
        8.1 ms at 99.9% confidence`` (empty for the mean, which is compared as shown)."""
        witness = self.witness(metric, commands)
        if witness is None or QUANTILES[metric] is None:
            return ""
        of = f"the largest of {commands} such round trips" if metric == "max_ms" else f"its {label(metric)}"
        return f"; {of} at least {witness:.3f} ms at {EVIDENCE:.1%} confidence"

    def unexplained(self, metric: str, ceiling: float, commands: int = 1) -> str:
        """``describe`` for a failure; when the probes' own estimate was over the ceiling but not clearly
        (one stalled probe), it says so, since the rule did not count it."""
        shown = self.describe(metric)
        value = self.value(metric)
        if value is None or value <= ceiling or self.over(metric, ceiling, commands):
            return shown
        return f"{shown}{self.evidence(metric, commands)}: not clearly above the ceiling, so not the machine alone"


def over_span(probes: Sequence[tuple[int, int]], start_ns: int, end_ns: int) -> Baseline:
    """The probes that ran between ``start_ns`` and ``end_ns`` (the judged commands' seconds)."""
    return Baseline.of([duration / 1e6 for start, duration in probes if start_ns <= start <= end_ns])


def explained(metric: str, ceiling: float, baseline: Baseline, commands: int = 1) -> str:
    """The sentence an inconclusive verdict adds when the baseline itself was over the ceiling."""
    return (
        f"{baseline.describe(metric)}{baseline.evidence(metric, commands)}, itself above the ceiling {ceiling:g} ms: "
        "this machine could not meet it then, whatever the code, so the miss is not evidence against the code "
        "(rerun on a quieter machine)"
    )
