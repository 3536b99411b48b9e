"""The metric registry: every run-wide metric (a ``--cache-targets`` key) defined once.

A leaf module (it imports nothing of the package): targets parsing, the run summary,
the marker checks and every report renderer read what a metric is from here. Adding a
metric is one ``Metric(...)`` entry in ``METRICS`` plus the code that measures it (a
fixture appending a ``Measurement`` with that name, or a statistic of the observed
commands); see ``Metric`` for what each field drives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CEILING = "ceiling"  # the measured value must be <= the limit
FLOOR = "floor"  # the measured value must be >= the limit

# Where a metric's run-wide value comes from (``checks/targets._measured`` reads it by source).
READS = "reads"  # the hit/miss outcomes of observed reads
COMMANDS = "commands"  # the latency histogram of observed commands
WRITES = "writes"  # the keys observed writes left behind (TTLs)
OUTCOMES = "outcomes"  # the outcome counts of observed commands (errors)
FIXTURE = "fixture"  # ``Measurement``s that fixtures append (one value per measurement)
VALUES = "values"  # the value bytes of observed writes (``observe.sizes``)
MEMORY = "memory"  # the memory of the keys left at the end of each test (``observe.memory``)
KB = 1024  # memory_kb counts kibibytes, as Redis's ``*_human`` fields do

# How a fixture metric's measurements combine over the run; it matches the direction
# (a ceiling holds on the largest or on the total, a floor on the smallest).
_COMBINE: dict[str, Callable[[Iterable[float]], float]] = {"max": max, "sum": sum, "min": min}


def format_ms(value: float | None) -> str:
    """Milliseconds without the unit, as every table and message shows them: three decimals
    below 10 ms, one above (``0.353``, ``12.4``); ``-`` for no value."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def format_bytes(count: float) -> str:
    """Bytes as people read them: ``950 B``, ``10.0 KB``, ``2.50 MB`` (KB = 1024 bytes, as in Redis)."""
    if count < KB:
        return f"{int(count)} B"
    if count < KB * KB:
        return f"{count / KB:.1f} KB"
    return f"{count / KB / KB:.2f} MB"


def format_percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``91.2%``); ``-`` for no value."""
    return "-" if value is None else f"{value:.1%}"


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite as a float (``10**400`` is not: ``math.isfinite`` overflows)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class Measurement:
    """A value a fixture measured in a test, kept for run-wide targets and reports.

    ``metric`` is a registered metric's name (``invalidation_ms``, ``stale_reads``,
    ``speedup``, ...); ``keys`` are the Redis keys involved, so a target applies when any
    of them matches its pattern (``"*"`` targets take every measurement).
    """

    metric: str
    value: float
    keys: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Kind:
    """A metric's unit: what a limit must be, and how a value is written."""

    name: str
    expected: str  # the phrase after "must be" in a target-file error
    format: Callable[[float], str]
    valid: Callable[[Any], bool]  # called only on finite numbers


FRACTION = Kind("fraction", "a number from 0 to 1", format_percent, lambda value: 0 <= value <= 1)
MS = Kind("ms", "a number of milliseconds > 0", lambda value: f"{format_ms(value)} ms", lambda value: value > 0)
COUNT = Kind("count", "a whole number >= 0", lambda value: f"{int(value)}", lambda v: isinstance(v, int) and v >= 0)
RATIO = Kind("ratio", "a number > 0", lambda value: f"{value:.2f}x", lambda value: value > 0)
BYTES = Kind("bytes", "a whole number of bytes >= 0", format_bytes, lambda v: isinstance(v, int) and v >= 0)
KILOBYTES = Kind("kb", "a number of KB > 0 (1 KB = 1024 bytes)", lambda v: format_bytes(v * KB), lambda v: v > 0)


@dataclass(frozen=True)
class Metric:
    """One metric, everything the layers need to know about it.

    - ``kind``: its unit (limit validation, formatting in every report);
    - ``direction``: ``CEILING`` (value <= limit) or ``FLOOR`` (value >= limit); also which
      measurement is the run's "worst" one;
    - ``timing``: rests on a clock, so ``--cache-timing report`` shows a miss without failing;
    - ``source``: where the run-wide value comes from (``READS``, ``COMMANDS``, ``WRITES``, ``FIXTURE``);
    - ``statistic``: how it is computed from its source: ``"mean"``, ``"percentile"`` (with
      ``quantile``, nearest rank) or ``"max"`` for ``COMMANDS`` (a missed ceiling needs the lower
      confidence bound above it, and the baseline round trip not over it); ``"max"``/``"sum"``/``"min"``
      for ``FIXTURE`` measurements (their aggregation), ``"mean"`` for the mean of the measurements of
      the fixture metric named by ``of``; ``"rate"`` and ``"count"`` for the others;
    - ``measured_by``: what in a run measures it, for the "no data" hint;
    - ``meaning``: a parenthetical after the kind's expected value in error messages;
    - ``target``: False for a metric that is only plotted (never a ``--cache-targets`` key);
    - ``baseline``: for a timing fixture metric, the statistic of the machine's own round trip
      (the baseline probes, a ``COMMANDS`` metric's name) that a missed limit is read against;
      ``COMMANDS`` metrics are read against their own statistic (see ``baseline_statistic``).
    """

    name: str
    kind: Kind
    direction: str
    source: str
    statistic: str
    measured_by: str
    timing: bool = False
    quantile: float | None = None
    meaning: str = ""
    target: bool = True
    of: str = ""  # FIXTURE "mean": the metric whose measurements it averages
    baseline: str = ""

    @property
    def baseline_statistic(self) -> str | None:
        """The baseline probes' statistic a missed limit is read against; None: the baseline has no say."""
        return self.baseline or (self.name if self.source == COMMANDS else None)

    @property
    def floor(self) -> bool:
        """The measured value must be >= the limit (else <=)."""
        return self.direction == FLOOR

    @property
    def expected(self) -> str:
        """What a limit on this metric must be, for a one-line error."""
        return f"{self.kind.expected} ({self.meaning})" if self.meaning else self.kind.expected

    @property
    def aggregated(self) -> bool:
        """A fixture metric whose measurements combine into one run-wide value."""
        return self.source == FIXTURE and self.statistic in _COMBINE

    def limit_is_valid(self, value: Any) -> bool:
        return is_finite_number(value) and self.kind.valid(value)

    def meets(self, value: float, limit: float) -> bool:
        return value >= limit if self.floor else value <= limit

    def combine(self, first: float, second: float) -> float:
        """Two measurements' (or two workers') values combined by the metric's aggregation."""
        return _COMBINE[self.statistic]([first, second])

    def worse(self, value: float, than: float) -> bool:
        """Whether ``value`` is further on the bad side than ``than`` (lower for a floor)."""
        return value < than if self.floor else value > than

    def format(self, value: float | None) -> str:
        """The value as people write it: ``91.2%``, ``0.353 ms``, ``3``, ``1.13x``; ``-`` for none."""
        return "-" if value is None else self.kind.format(value)

    def limit_text(self, limit: float) -> str:
        return f"{'>=' if self.floor else '<='} {self.format(limit)}"


_BY_CLIENT = "commands through a redis-py client"
_BY_COST = "a test calling cache_bench.cost(...)"

METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "hit_rate",
            FRACTION,
            FLOOR,
            READS,
            "rate",
            "reads through a redis-py client (cache_redis, cache_url or the app's own client)",
            meaning="fraction of reads that hit",
        ),
        Metric("mean_ms", MS, CEILING, COMMANDS, "mean", _BY_CLIENT, timing=True),
        Metric("p50_ms", MS, CEILING, COMMANDS, "percentile", _BY_CLIENT, timing=True, quantile=0.50),
        Metric("p95_ms", MS, CEILING, COMMANDS, "percentile", _BY_CLIENT, timing=True, quantile=0.95),
        Metric("p99_ms", MS, CEILING, COMMANDS, "percentile", _BY_CLIENT, timing=True, quantile=0.99),
        Metric("p999_ms", MS, CEILING, COMMANDS, "percentile", _BY_CLIENT, timing=True, quantile=0.999),
        Metric("max_ms", MS, CEILING, COMMANDS, "max", _BY_CLIENT, timing=True),
        Metric(
            "invalidation_ms",
            MS,
            CEILING,
            FIXTURE,
            "max",
            "a test calling cache_invalidation.measure(...)",
            timing=True,
            baseline="max_ms",
        ),
        Metric(
            "invalidation_mean_ms",
            MS,
            CEILING,
            FIXTURE,
            "mean",
            "a test calling cache_invalidation.measure(...)",
            timing=True,
            of="invalidation_ms",
            baseline="mean_ms",
        ),
        Metric("max_value_bytes", BYTES, CEILING, VALUES, "max", "writes through a redis-py client"),
        Metric(
            "memory_kb",
            KILOBYTES,
            CEILING,
            MEMORY,
            "max",
            "a test that leaves the pattern's keys in the plugin's Redis at its end (read only when a target, "
            "a report file or a cache_size(memory_kb=) marker asks)",
        ),
        Metric("stale_reads", COUNT, CEILING, FIXTURE, "sum", "a test using cache_consistency (run(...) or check())"),
        Metric("round_trips_per_call", COUNT, CEILING, FIXTURE, "max", _BY_COST),
        Metric("commands_per_call", COUNT, CEILING, FIXTURE, "max", _BY_COST),
        Metric("bytes_per_call", BYTES, CEILING, FIXTURE, "max", _BY_COST, meaning="payload bytes sent and received"),
        Metric("keys_without_ttl", COUNT, CEILING, WRITES, "count", "writes through a redis-py client"),
        Metric(
            "speedup",
            RATIO,
            FLOOR,
            FIXTURE,
            "min",
            "a test calling cache_bench.speedup(...)",
            timing=True,
            meaning="cached/uncached ratio",
        ),
        Metric(
            "max_fills",
            COUNT,
            CEILING,
            FIXTURE,
            "max",
            "a test in which several callers read a cold key at once (cache_bench.stampede(...) makes one)",
            meaning="most fills of one key in one cold burst",
        ),
        Metric("errors", COUNT, CEILING, OUTCOMES, "count", _BY_CLIENT, meaning="Redis commands that failed"),
        # plotted in the HTML report (time against cache size), never a target
        Metric(
            "invalidation_scaling_ms",
            MS,
            CEILING,
            FIXTURE,
            "point",
            "a test calling cache_invalidation.scaling(...)",
            timing=True,
            target=False,
        ),
    )
}

TARGET_METRICS: dict[str, Metric] = {name: metric for name, metric in METRICS.items() if metric.target}

# The command-latency percentiles (``cache_latency`` ceilings, report columns), in registry order.
PERCENTILES: tuple[Metric, ...] = tuple(
    metric for metric in METRICS.values() if metric.source == COMMANDS and metric.statistic == "percentile"
)
LATENCY_CEILINGS: tuple[Metric, ...] = tuple(metric for metric in METRICS.values() if metric.source == COMMANDS)


def format_metric(name: str, value: float | None) -> str:
    """``value`` formatted as metric ``name`` is (an unregistered name: as a ratio)."""
    metric = METRICS.get(name)
    if metric is None:
        return "-" if value is None else RATIO.format(value)
    return metric.format(value)
