"""Run-wide aggregation: per-pattern counts, command counts and latency histograms.

Each finished test is folded into a ``RunSummary`` once (its events are dropped
afterwards), so memory stays flat over thousands of tests. Everything here is
mergeable by addition: a pytest-xdist worker sends each test's share (``take_json``,
a JSON string) to the controller, which merges it before targets are evaluated;
counts and hit rates of ``-n 2`` equal those of ``-n 0``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..metrics import METRICS, MS, Measurement
from .aggregate import HitRate, nearest_rank
from .commands import DELETE, ERROR, HIT, MISS, WRITE, classify, classify_single, key_text
from .events import Event
from .expiry import KeysAtEnd, keys_without_ttl
from .instrument import LOCAL, RawEvent
from .memory import MemoryAtEnd
from .patterns import MATCH_ALL, key_shape, matcher
from .sizes import payload_sizes, written_sizes

# Histogram buckets: values below 2**SUB_BITS+1 ns are exact; above, each power of two
# is split in 2**SUB_BITS buckets, so a bucket's width is at most 1/64 (1.6 %) of its value.
SUB_BITS = 6
_EXACT_LIMIT = 1 << (SUB_BITS + 1)
SHAPE_LIMIT = 1_000  # distinct key shapes tracked; more are folded into OTHER_SHAPES
OTHER_SHAPES = "(other shapes)"
POINT_LIMIT = 1_000  # measurement points kept per metric for plots
KEY_CACHE_LIMIT = 100_000
LOCAL_SUFFIX = " (local)"  # a read the client's own cache answered: "GET (local)" in command counts
_DIGITS_ZEROED = str.maketrans("123456789", "000000000")


def bucket_of(value_ns: int) -> int:
    """Monotonic bucket index of a duration (HdrHistogram-style log-linear buckets)."""
    if value_ns < _EXACT_LIMIT:
        return max(value_ns, 0)
    shift = value_ns.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (value_ns >> shift)


def bucket_upper_ns(bucket: int) -> int:
    """Highest duration that falls in ``bucket`` (what percentiles report, as HdrHistogram does)."""
    if bucket < _EXACT_LIMIT:
        return bucket
    shift = (bucket >> SUB_BITS) - 1
    mantissa = bucket - (shift << SUB_BITS)
    return ((mantissa + 1) << shift) - 1


def bucket_lower_ns(bucket: int) -> int:
    """Lowest duration that falls in ``bucket``: what lower confidence bounds read (never above the truth)."""
    return bucket if bucket < _EXACT_LIMIT else bucket_upper_ns(bucket - 1) + 1


class LatencyHistogram:
    """Command durations in log-linear buckets: O(1) per record, exact count, sum and max, mergeable."""

    __slots__ = ("buckets", "count", "max_ns", "total_ns")

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max_ns = 0
        self.total_ns = 0

    def record_many(self, durations_ns: Iterable[int]) -> None:
        buckets = self.buckets
        for value in durations_ns:
            buckets[bucket_of(value)] += 1
            self.count += 1
            self.total_ns += value
            if value > self.max_ns:
                self.max_ns = value

    def add_buckets(self, buckets: list[int], max_ns: int, total_ns: int) -> None:
        """Add durations already bucketed with ``bucket_of`` (one test's, counted in one C-level pass)."""
        self.buckets.update(buckets)
        self.count += len(buckets)
        self.max_ns = max(self.max_ns, max_ns)
        self.total_ns += total_ns

    def merge(self, other: LatencyHistogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.max_ns = max(self.max_ns, other.max_ns)
        self.total_ns += other.total_ns

    def mean_ms(self) -> float | None:
        """The exact mean (the sum is kept exactly, not bucketed)."""
        return self.total_ns / self.count / 1e6 if self.count else None

    def mean_lower_bound_ms(self, confidence: float) -> float | None:
        """``checks.bounds.mean_lower_bound`` over the histogram, each duration read at its bucket's
        lower edge (so the bound stays a lower bound): the empirical survival curve lowered by
        eps = sqrt(ln(1 / (1 - confidence)) / (2 n)), integrated. None when eps >= 1."""
        if not self.count:
            return None
        eps = math.sqrt(math.log(1.0 / (1.0 - confidence)) / (2.0 * self.count))
        if eps >= 1.0:
            return None
        bound, previous, below = 0.0, 0, 0
        for bucket in sorted(self.buckets):
            height = (self.count - below) / self.count - eps
            if height <= 0:
                break
            value = bucket_lower_ns(bucket)
            bound += (value - previous) * height
            previous = value
            below += self.buckets[bucket]
        return bound / 1e6

    def percentile_ms(self, fraction: float) -> float | None:
        """Nearest-rank percentile (as ``observe.aggregate.percentile``), within 1.6 % above the exact value."""
        if not self.count:
            return None
        return self.value_at_rank_ms(nearest_rank(self.count, fraction))

    def value_at_rank_ms(self, rank: int) -> float:
        """The ``rank``-th smallest duration (1-based), within 1.6 % above the exact value."""
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(bucket_upper_ns(bucket), self.max_ns) / 1e6
        return self.max_ns / 1e6

    def cdf_ms(self, points: int = 64) -> list[tuple[float, float]]:
        """At most ``points`` (duration ms, fraction of commands <= it) pairs, for plots."""
        if not self.count:
            return []
        ordered = sorted(self.buckets)
        step = max(1, len(ordered) // points)
        cdf, seen = [], 0
        for index, bucket in enumerate(ordered):
            seen += self.buckets[bucket]
            if index % step == 0 or index == len(ordered) - 1:
                cdf.append((round(min(bucket_upper_ns(bucket), self.max_ns) / 1e6, 6), round(seen / self.count, 6)))
        return cdf

    def to_data(self) -> dict[str, Any]:
        return {"buckets": list(self.buckets.items()), "max_ns": self.max_ns, "total_ns": self.total_ns}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> LatencyHistogram:
        histogram = cls()
        histogram.buckets = Counter(dict(data["buckets"]))
        histogram.count = sum(histogram.buckets.values())
        histogram.max_ns = int(data["max_ns"])
        histogram.total_ns = int(data["total_ns"])
        return histogram


@dataclass
class MetricAggregate:
    """A fixture metric over many measurements, combined by the metric's rule, and its worst test.

    ``value`` combines the measurements by the metric's registered aggregation (``metrics.METRICS``:
    max of ``invalidation_ms``, sum of ``stale_reads``, min of ``speedup``);
    ``worst`` is the single measurement furthest on the bad side, ties broken by node id
    so that merged worker summaries name the same test as a single-process run. ``total`` is
    the sum of the measurements (their mean: ``total / count``) and ``histogram`` their
    distribution (millisecond metrics), for a confidence bound of the mean.
    """

    metric: str
    value: float
    count: int
    worst: float
    worst_nodeid: str
    total: float = 0.0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)

    @classmethod
    def first(cls, metric: str, value: float, nodeid: str) -> MetricAggregate:
        aggregate = cls(metric, value, 1, value, nodeid, value)
        if METRICS[metric].kind is MS:
            aggregate.histogram.record_many([round(value * 1e6)])
        return aggregate

    @property
    def mean(self) -> float:
        return self.total / self.count

    def merge(self, other: MetricAggregate) -> None:
        metric = METRICS[self.metric]
        self.value = metric.combine(self.value, other.value)
        self.count += other.count
        self.total += other.total
        self.histogram.merge(other.histogram)
        tie = other.worst == self.worst and other.worst_nodeid < self.worst_nodeid
        if metric.worse(other.worst, self.worst) or tie:
            self.worst, self.worst_nodeid = other.worst, other.worst_nodeid

    def copy(self) -> MetricAggregate:
        mine = MetricAggregate(self.metric, self.value, self.count, self.worst, self.worst_nodeid, self.total)
        mine.histogram.merge(self.histogram)
        return mine

    def to_data(self) -> list[Any]:
        return [self.value, self.count, self.worst, self.worst_nodeid, self.total, self.histogram.to_data()]

    @classmethod
    def from_data(cls, metric: str, data: list[Any]) -> MetricAggregate:
        value, count, worst, nodeid, total, histogram = data
        return cls(metric, value, count, worst, nodeid, total, LatencyHistogram.from_data(histogram))


class _TestGroup:
    """One test's events for one pattern or shape, before they are folded into the run.

    ``buckets`` holds one latency bucket per command: lists grow at C speed and are
    counted into the run's histogram once per test.
    """

    __slots__ = (
        "outcomes", "buckets", "max_ns", "total_ns", "commands", "miss_shapes", "local_hits", "written", "read",
        "largest",
    )  # fmt: skip

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.buckets: list[int] = []
        self.max_ns = 0
        self.total_ns = 0
        self.commands: Counter[str] = Counter()
        self.miss_shapes: Counter[str] = Counter()
        self.local_hits = 0
        self.written = 0  # value bytes
        self.read = 0
        self.largest: tuple[int, str] | None = None  # (value bytes, key) of the biggest write

    def add_sizes(self, written: int, read: int, largest: tuple[int, str] | None) -> None:
        self.written += written
        self.read += read
        if largest is not None and (self.largest is None or largest[0] > self.largest[0]):
            self.largest = largest

    def add_durations(self, max_ns: int, total_ns: int, buckets: list[int]) -> None:
        self.buckets.extend(buckets)
        self.max_ns = max(self.max_ns, max_ns)
        self.total_ns += total_ns


@dataclass
class PatternSummary(HitRate):
    """What the whole run did to keys matching one pattern (or one key shape)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    deletes: int = 0
    errors: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    baseline: LatencyHistogram = field(default_factory=LatencyHistogram)  # probes of the tests touching these keys
    miss_shapes: Counter[str] = field(default_factory=Counter)
    keys_written: int = 0
    keys_without_ttl: int = 0
    ttl_examples: list[str] = field(default_factory=list)
    measured: dict[str, MetricAggregate] = field(default_factory=dict)
    local_hits: int = 0  # of ``hits``: answered by the client's own cache, no round trip
    bytes_written: int = 0  # value bytes (observe.sizes)
    bytes_read: int = 0
    max_value_bytes: int | None = None  # the biggest value one write stored, its key and test
    max_value_key: str = ""
    max_value_nodeid: str = ""
    memory_bytes: int | None = None  # the pattern's keys at the end of a test: the largest over tests
    memory_keys: int = 0
    memory_nodeid: str = ""
    memory_estimated: bool = False  # the fake backend's estimate, not MEMORY USAGE

    @property
    def command_count(self) -> int:
        return sum(self.commands.values())

    def add_group(self, group: _TestGroup, nodeid: str = "") -> None:
        outcomes = group.outcomes
        self.local_hits += group.local_hits
        self.bytes_written += group.written
        self.bytes_read += group.read
        if group.largest is not None:
            self._add_largest(group.largest[0], group.largest[1], nodeid)
        self.hits += outcomes[HIT]
        self.misses += outcomes[MISS]
        self.writes += outcomes[WRITE]
        self.deletes += outcomes[DELETE]
        self.errors += outcomes[ERROR]
        self.commands.update(group.commands)
        self.latency.add_buckets(group.buckets, group.max_ns, group.total_ns)
        self.miss_shapes.update(group.miss_shapes)

    def _add_largest(self, size: int, key: str, nodeid: str) -> None:
        """Keep the biggest value; ties go to the first node id, so merged workers name the same test."""
        if self.max_value_bytes is None or (-size, nodeid) < (-self.max_value_bytes, self.max_value_nodeid):
            self.max_value_bytes, self.max_value_key, self.max_value_nodeid = size, key, nodeid

    def add_memory(self, size: int, keys: int, nodeid: str, estimated: bool) -> None:
        """One test's memory of this pattern's keys; the largest over tests is kept (ties: first node id)."""
        if self.memory_bytes is None or (-size, nodeid) < (-self.memory_bytes, self.memory_nodeid):
            self.memory_bytes, self.memory_keys, self.memory_nodeid = size, keys, nodeid
        self.memory_estimated = self.memory_estimated or estimated

    def add_measurement(self, aggregate: MetricAggregate) -> None:
        mine = self.measured.get(aggregate.metric)
        if mine is None:
            self.measured[aggregate.metric] = aggregate.copy()
        else:
            mine.merge(aggregate)

    def add_ttl(self, written: int, without_ttl: Sequence[str]) -> None:
        self.keys_written += written
        self.keys_without_ttl += len(without_ttl)
        if without_ttl and len(self.ttl_examples) < 3:
            self.ttl_examples = sorted({*self.ttl_examples, *without_ttl})[:3]

    def merge(self, other: PatternSummary) -> None:
        self.hits += other.hits
        self.misses += other.misses
        self.writes += other.writes
        self.deletes += other.deletes
        self.errors += other.errors
        self.commands.update(other.commands)
        self.latency.merge(other.latency)
        self.baseline.merge(other.baseline)
        self.miss_shapes.update(other.miss_shapes)
        self.keys_written += other.keys_written
        self.keys_without_ttl += other.keys_without_ttl
        self.ttl_examples = sorted({*self.ttl_examples, *other.ttl_examples})[:3]
        for aggregate in other.measured.values():
            self.add_measurement(aggregate)
        self.local_hits += other.local_hits
        self.bytes_written += other.bytes_written
        self.bytes_read += other.bytes_read
        if other.max_value_bytes is not None:
            self._add_largest(other.max_value_bytes, other.max_value_key, other.max_value_nodeid)
        if other.memory_bytes is not None:
            self.add_memory(other.memory_bytes, other.memory_keys, other.memory_nodeid, other.memory_estimated)

    def to_data(self) -> dict[str, Any]:
        return {
            "outcomes": [self.hits, self.misses, self.writes, self.deletes, self.errors],
            "commands": dict(self.commands),
            "latency": self.latency.to_data(),
            "baseline": self.baseline.to_data(),
            "miss_shapes": dict(self.miss_shapes),
            "ttl": [self.keys_written, self.keys_without_ttl, self.ttl_examples],
            "measured": {metric: aggregate.to_data() for metric, aggregate in self.measured.items()},
            "sizes": [
                self.local_hits,
                self.bytes_written,
                self.bytes_read,
                self.max_value_bytes,
                self.max_value_key,
                self.max_value_nodeid,
            ],
            "memory": [self.memory_bytes, self.memory_keys, self.memory_nodeid, self.memory_estimated],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> PatternSummary:
        hits, misses, writes, deletes, errors = data["outcomes"]
        written, without_ttl, examples = data["ttl"]
        local_hits, bytes_written, bytes_read, max_value, max_key, max_nodeid = data["sizes"]
        memory, memory_keys, memory_nodeid, estimated = data["memory"]
        return cls(
            hits=hits,
            misses=misses,
            writes=writes,
            deletes=deletes,
            errors=errors,
            commands=Counter(data["commands"]),
            latency=LatencyHistogram.from_data(data["latency"]),
            baseline=LatencyHistogram.from_data(data["baseline"]),
            miss_shapes=Counter(data["miss_shapes"]),
            keys_written=written,
            keys_without_ttl=without_ttl,
            ttl_examples=list(examples),
            measured={metric: MetricAggregate.from_data(metric, values) for metric, values in data["measured"].items()},
            local_hits=local_hits,
            bytes_written=bytes_written,
            bytes_read=bytes_read,
            max_value_bytes=max_value,
            max_value_key=max_key,
            max_value_nodeid=max_nodeid,
            memory_bytes=memory,
            memory_keys=memory_keys,
            memory_nodeid=memory_nodeid,
            memory_estimated=estimated,
        )


@dataclass(frozen=True)
class MeasurementPoint:
    """One fixture measurement kept for plots (invalidation values and scaling, stale reads)."""

    metric: str
    value: float
    nodeid: str
    size: float | None = None


class RunSummary:
    """The whole run, per target pattern (plus ``"*"``) and per key shape, and per test.

    ``track_ttl=False`` skips replaying each test's writes for ``keys_without_ttl``, for
    runs where nothing shows it (no target, no report file); ``track_memory=False`` tells the
    run not to read each test's memory (``observe.memory``) for the summary.
    """

    def __init__(self, patterns: Iterable[str] = (), *, track_ttl: bool = True, track_memory: bool = True) -> None:
        self.track_ttl = track_ttl
        self.track_memory = track_memory
        self.patterns: dict[str, PatternSummary] = {MATCH_ALL: PatternSummary()}
        for pattern in patterns:
            self.patterns.setdefault(pattern, PatternSummary())
        self.shapes: dict[str, PatternSummary] = {}
        self.tests: list[dict[str, Any]] = []
        self.points: list[MeasurementPoint] = []
        self.test_count = 0
        self.worker_ids: set[str] = set()  # pytest-xdist workers whose tests were merged in
        self.crashes: dict[str, str | None] = {}  # crashed worker -> the test it was running (None: between tests)
        self.server_version: str | None = None
        self._key_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._shape_cache: dict[str, str] = {}

    # -- folding one test in
    def _classify_key(self, key: str) -> tuple[str, tuple[str, ...]]:
        """(shape, target patterns it matches), cached: keys repeat across tests."""
        cached = self._key_cache.get(key)
        if cached is None:
            if len(self._key_cache) >= KEY_CACHE_LIMIT:
                self._key_cache.clear()
                self._shape_cache.clear()
            patterns = tuple(p for p in self.patterns if p != MATCH_ALL and matcher(p)(key))
            cached = self._key_cache[key] = (self._shape_of(key), patterns)
        return cached

    def _shape_of(self, key: str) -> str:
        """``key_shape``, memoised for keys that differ only in their digits (``user:1``, ``user:2``):
        tests use new ids all the time, and ``key_shape`` makes every segment holding a digit ``*``."""
        skeleton = key.translate(_DIGITS_ZEROED)
        shape = self._shape_cache.get(skeleton)
        if shape is None:
            shape = self._shape_cache[skeleton] = key_shape(key)
        return shape

    def _shape_summary(self, shape: str) -> PatternSummary:
        summary = self.shapes.get(shape)
        if summary is None:
            if len(self.shapes) >= SHAPE_LIMIT:
                shape = OTHER_SHAPES
            summary = self.shapes.setdefault(shape, PatternSummary())
        return summary

    def add_test(
        self,
        nodeid: str,
        events: Sequence[Event],
        records: Sequence[RawEvent],
        measurements: Sequence[Measurement] = (),
        checks: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Fold in a test whose records were already classified into ``events`` (same order)."""
        rows = (_event_row(record, event) for event, record in zip(events, records))
        return self._fold(nodeid, rows, measurements, checks)

    def add_records(
        self,
        nodeid: str,
        records: Sequence[RawEvent],
        measurements: Sequence[Measurement] = (),
        checks: Sequence[dict[str, Any]] = (),
        keys_at_end: KeysAtEnd | None = None,
        baseline_ns: Sequence[int] = (),
        memory_at_end: MemoryAtEnd | None = None,
    ) -> dict[str, Any]:
        """Fold in one finished test from its raw records; returns its own metrics (for ``user_properties``).

        ``keys_at_end`` (backends the plugin owns): the database at the end of the test body,
        which ``keys_without_ttl`` then judges whole, as the ``cache_ttl`` marker does.
        ``baseline_ns``: the durations of the baseline probes taken over the test's commands; they
        count for every target pattern the test touched (the machine over the same seconds);
        ``memory_at_end``: its keys' memory, for ``memory_kb``.
        """
        return self._fold(nodeid, _record_rows(records), measurements, checks, keys_at_end, baseline_ns, memory_at_end)

    def _fold(
        self,
        nodeid: str,
        rows: Iterable[_Row],
        measurements: Sequence[Measurement],
        checks: Sequence[dict[str, Any]],
        keys_at_end: KeysAtEnd | None = None,
        baseline_ns: Sequence[int] = (),
        memory_at_end: MemoryAtEnd | None = None,
    ) -> dict[str, Any]:
        """Single-key commands (nearly all) are first grouped by (key shape, matching
        target patterns, command, outcome), which takes one cached lookup per command;
        the per-group bookkeeping then runs once per distinct combination, a handful
        per test, rather than once per command. Events are built only for commands the
        TTL replay needs (writes, deletes, key-changing reads) and for multi-key and
        keyless commands. Value sizes (``observe.sizes``) are worked out for hits and writes
        only, and summed per group the same way; the biggest write per group keeps its key.
        """
        self.test_count += 1
        everything = _TestGroup()
        groups: dict[tuple[bool, str], _TestGroup] = {}
        combined: _Combined = {}
        key_cache, classify_key = self._key_cache, self._classify_key
        ttl_input: list[tuple[Event, RawEvent]] | None = [] if self.track_ttl else None
        durations: list[int] = []
        for record, event, key, command, outcome in rows:
            duration = record[1]
            durations.append(duration)
            if key is not None:
                if record[4] == LOCAL:  # answered by the client's own cache
                    command += LOCAL_SUFFIX
                entry = (key_cache.get(key) or classify_key(key), command, outcome)
                same = combined.get(entry)
                if same is None:
                    combined[entry] = [record]
                else:
                    same.append(record)
                if ttl_input is not None and (outcome in _CHANGES_KEYS or command in _READS_THAT_CHANGE_KEYS):
                    event = event or Event(
                        record[0], duration, command, (key,), (outcome,), record[4], record[2], record[3]
                    )
                    ttl_input.append((event, record))
            elif event is not None:
                everything.outcomes.update(event.outcomes)
                everything.commands[event.command] += 1
                if event.keys:
                    self._add_multi_key(event, everything, groups)
                else:
                    everything.buckets.append(bucket_of(duration))
                if ttl_input is not None:
                    ttl_input.append((event, record))
        _add_combined(combined, everything, groups)
        if durations:
            everything.max_ns = max(durations)
            everything.total_ns = sum(durations)
        self.patterns[MATCH_ALL].add_group(everything, nodeid)
        for (is_shape, name), group in groups.items():
            (self._shape_summary(name) if is_shape else self.patterns[name]).add_group(group, nodeid)
        if baseline_ns:
            self.patterns[MATCH_ALL].baseline.record_many(baseline_ns)
            for is_shape, name in groups:
                if not is_shape:
                    self.patterns[name].baseline.record_many(baseline_ns)
        if memory_at_end is not None and self.track_memory:
            self._add_memory(nodeid, memory_at_end)
        if keys_at_end is not None and self.track_ttl:
            self._add_ttl_counts(list(keys_at_end.pttl_ms), keys_at_end.without_ttl())
        elif ttl_input:
            self._add_ttl([event for event, _ in ttl_input], [record for _, record in ttl_input])
        self._add_measurements(nodeid, measurements)
        metrics = _test_metrics(everything.outcomes, durations)
        if durations or checks or measurements:
            self.tests.append({"nodeid": nodeid, "metrics": metrics, "checks": list(checks)})
        return metrics

    def _add_multi_key(self, event: Event, everything: _TestGroup, groups: dict[tuple[bool, str], _TestGroup]) -> None:
        """MGET, DEL a b ...: each key's outcome counts; the command and its duration once per group."""
        touched: set[tuple[bool, str]] = set()
        bucket = bucket_of(event.duration_ns)
        everything.buckets.append(bucket)
        value_sizes = event.value_sizes
        for key, outcome, size in zip(event.keys, event.outcomes, value_sizes):
            shape, patterns = self._classify_key(key)
            if outcome == MISS:
                everything.miss_shapes[shape] += 1
            written, read = (size, 0) if outcome == WRITE else (0, size)
            biggest = (size, key) if outcome == WRITE else None
            everything.add_sizes(written, read, biggest)
            for group_id in ((True, shape), *((False, pattern) for pattern in patterns)):
                group = groups.get(group_id) or groups.setdefault(group_id, _TestGroup())
                group.outcomes[outcome] += 1
                group.add_sizes(written, read, biggest)
                if outcome == MISS and not group_id[0]:
                    group.miss_shapes[shape] += 1
                if group_id not in touched:
                    touched.add(group_id)
                    group.commands[event.command] += 1
                    group.add_durations(event.duration_ns, event.duration_ns, [bucket])

    def _add_memory(self, nodeid: str, memory: MemoryAtEnd) -> None:
        """Each pattern's and shape's share of the test's memory at its end; a pattern none of
        whose keys was left has no memory measurement from this test."""
        totals: dict[tuple[bool, str], list[int]] = {}
        for key, size in memory.bytes_by_key.items():
            shape, patterns = self._classify_key(key)
            for group_id in ((False, MATCH_ALL), (True, shape), *((False, pattern) for pattern in patterns)):
                total = totals.get(group_id) or totals.setdefault(group_id, [0, 0])
                total[0] += size
                total[1] += 1
        for (is_shape, name), (size, keys) in totals.items():
            summary = self._shape_summary(name) if is_shape else self.patterns[name]
            summary.add_memory(size, keys, nodeid, memory.estimated)

    def _add_ttl(self, events: Sequence[Event], records: Sequence[RawEvent]) -> None:
        written = {key for event in events for key, outcome in zip(event.keys, event.outcomes) if outcome == WRITE}
        if not written:
            return
        self._add_ttl_counts(list(written), keys_without_ttl(events, records))

    def _add_ttl_counts(self, written: Sequence[str], without: Sequence[str]) -> None:
        self.patterns[MATCH_ALL].add_ttl(len(written), without)
        if len(self.patterns) == 1:
            return
        classify_key = self._classify_key
        written_per_pattern = Counter(pattern for key in written for pattern in classify_key(key)[1])
        for pattern, count in written_per_pattern.items():
            self.patterns[pattern].add_ttl(count, [key for key in without if pattern in classify_key(key)[1]])

    def _add_measurements(self, nodeid: str, measurements: Sequence[Measurement]) -> None:
        for measurement in measurements:
            metric = METRICS.get(measurement.metric)
            if metric is None:
                continue
            if not metric.target:  # plotted, never a target
                self._add_point(measurement, nodeid)
            if not metric.aggregated:
                continue
            value = float(measurement.value)
            matched = {p for key in measurement.keys for p in self._classify_key(str(key))[1]}
            aggregate = MetricAggregate.first(measurement.metric, value, nodeid)
            for pattern, summary in self.patterns.items():
                if pattern == MATCH_ALL or pattern in matched:
                    summary.add_measurement(aggregate)
            self._add_point(measurement, nodeid)

    def _add_point(self, measurement: Measurement, nodeid: str) -> None:
        """Kept for the report's plots, up to ``POINT_LIMIT`` per metric."""
        if sum(1 for point in self.points if point.metric == measurement.metric) >= POINT_LIMIT:
            return
        size = measurement.detail.get("size") if isinstance(measurement.detail, dict) else None
        self.points.append(
            MeasurementPoint(
                measurement.metric,
                float(measurement.value),
                nodeid,
                float(size) if isinstance(size, (int, float)) else None,
            )
        )

    @property
    def workers(self) -> int:
        """pytest-xdist workers that observed tests; 0 for a single-process run."""
        return len(self.worker_ids)

    # -- merging worker summaries
    def merge(self, other: RunSummary, worker: str | None = None) -> None:
        """Add ``other`` (a worker's share), counting ``worker`` when it brings tests."""
        for pattern, summary in other.patterns.items():
            self.patterns.setdefault(pattern, PatternSummary()).merge(summary)
        for shape, summary in other.shapes.items():
            self._shape_summary(shape).merge(summary)
        self.tests.extend(other.tests)
        if other.points:
            kept = Counter(point.metric for point in self.points)
            for point in other.points:
                if kept[point.metric] < POINT_LIMIT:
                    kept[point.metric] += 1
                    self.points.append(point)
        self.test_count += other.test_count
        if worker is not None and other.test_count:
            self.worker_ids.add(worker)
        self.server_version = self.server_version or other.server_version

    def take_json(self) -> str | None:
        """What was folded in since the last call, as JSON (None if nothing), and start over.

        A pytest-xdist worker sends each test's share with its teardown report, so a
        worker that crashes loses only the test it was running; the key caches are kept.
        """
        if not self.test_count:
            return None
        text = self.to_json()
        self.patterns = {pattern: PatternSummary() for pattern in self.patterns}
        self.shapes = {}
        self.tests = []
        self.points = []
        self.test_count = 0
        return text

    def to_json(self) -> str:
        return json.dumps(
            {
                "patterns": {name: summary.to_data() for name, summary in self.patterns.items()},
                "shapes": {name: summary.to_data() for name, summary in self.shapes.items()},
                "tests": self.tests,
                "points": [[p.metric, p.value, p.nodeid, p.size] for p in self.points],
                "test_count": self.test_count,
                "server_version": self.server_version,
            },
            default=str,
        )

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        data = json.loads(text)
        summary = cls()
        summary.patterns = {name: PatternSummary.from_data(item) for name, item in data["patterns"].items()}
        summary.shapes = {name: PatternSummary.from_data(item) for name, item in data["shapes"].items()}
        summary.tests = data["tests"]
        summary.points = [MeasurementPoint(*point) for point in data["points"]]
        summary.test_count = data["test_count"]
        summary.server_version = data["server_version"]
        return summary


# One command as ``RunSummary._fold`` takes it: (record, event, key, command, outcome). A command
# on one key carries that key, its command and outcome, and its event only if one was built
# anyway; any other command carries its event and no key.
_Row = tuple[RawEvent, Event | None, str | None, str, str]
# One test's single-key commands: ((key shape, matching target patterns), command, outcome) -> durations.
_Entry = tuple[tuple[str, tuple[str, ...]], str, str]
# ... -> their records: durations and value sizes are read from them once per group, not in the loop.
_Combined = dict[_Entry, list[RawEvent]]
_CHANGES_KEYS = frozenset({WRITE, DELETE})
# Reads that also change a key's expiry or existence: the TTL replay needs them.
_READS_THAT_CHANGE_KEYS = frozenset({"GETEX", "GETDEL", "HGETEX", "HGETDEL"})


def _add_combined(combined: _Combined, everything: _TestGroup, groups: dict[tuple[bool, str], _TestGroup]) -> None:
    """Add one test's single-key commands, grouped by ((shape, patterns), command, outcome), to
    the run-wide group and to their shape's and patterns' groups: once per group, not per command.
    Local hits count as hits and in the command counts (``GET (local)``), never in latency."""
    all_buckets = everything.buckets
    for ((shape, patterns), command, outcome), records in combined.items():
        count = len(records)
        local = command.endswith(LOCAL_SUFFIX)
        buckets = [] if local else [bucket_of(record[1]) for record in records]
        max_ns = max(record[1] for record in records)
        total_ns = 0 if local else sum(record[1] for record in records)
        all_buckets.extend(buckets)
        written, read, biggest = _group_sizes(command, outcome, records)
        local_hits = count if local and outcome == HIT else 0
        everything.outcomes[outcome] += count
        everything.commands[command] += count
        everything.local_hits += local_hits
        everything.add_sizes(written, read, biggest)
        if outcome == MISS:
            everything.miss_shapes[shape] += count
        for group_id in ((True, shape), *((False, pattern) for pattern in patterns)):
            group = groups.get(group_id) or groups.setdefault(group_id, _TestGroup())
            group.outcomes[outcome] += count
            group.commands[command] += count
            group.local_hits += local_hits
            group.add_sizes(written, read, biggest)
            if not local:
                group.add_durations(max_ns, total_ns, buckets)
            if outcome == MISS and not group_id[0]:
                group.miss_shapes[shape] += count


def _group_sizes(command: str, outcome: str, records: list[RawEvent]) -> tuple[int, int, tuple[int, str] | None]:
    """(value bytes written, read, (bytes, key) of the biggest write) of one group of single-key commands."""
    if outcome == HIT:
        return 0, sum(payload_sizes([record[3] for record in records])), None
    if outcome != WRITE:
        return 0, 0, None
    sizes = written_sizes(command, [record[2] for record in records])
    biggest = max(range(len(sizes)), key=sizes.__getitem__)
    return sum(sizes), 0, (sizes[biggest], key_text(records[biggest][2][1]))


def _event_row(record: RawEvent, event: Event) -> _Row:
    if len(event.keys) == 1:
        return record, event, event.keys[0], event.command, event.outcomes[0]
    return record, event, None, event.command, ""


def _record_rows(records: Iterable[RawEvent]) -> Iterator[_Row]:
    """Rows without an event for single-key commands (``classify_single``), with one for the rest."""
    for record in records:
        single = classify_single(record[2], record[3])
        if single is None:
            start, duration, args, reply, pipeline_id = record
            yield _event_row(record, Event(start, duration, *classify(args, reply), pipeline_id, args, reply))
        else:
            command, key, outcome = single
            yield record, None, key, command, outcome


def own_metrics(records: Iterable[RawEvent]) -> dict[str, Any]:
    """One test's own numbers without folding it into a run summary (when nothing in the run reads one)."""
    outcomes: Counter[str] = Counter()
    durations: list[int] = []
    for record, event, key, _, outcome in _record_rows(records):
        durations.append(record[1])
        if key is not None:
            outcomes[outcome] += 1
        elif event is not None:
            outcomes.update(event.outcomes)
    return _test_metrics(outcomes, durations)


def _test_metrics(outcomes: Counter[str], durations: list[int]) -> dict[str, Any]:
    """One test's own numbers: what ``user_properties`` (JUnit) and the report's test list carry."""
    hits, misses = outcomes[HIT], outcomes[MISS]
    metrics: dict[str, Any] = {
        "commands": len(durations),
        "reads": hits + misses,
        "hits": hits,
        "misses": misses,
        "hit_rate": round(hits / (hits + misses), 6) if hits + misses else None,
    }
    if durations:
        ordered = sorted(durations)
        metrics["p99_ms"] = round(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] / 1e6, 6)
        metrics["max_ms"] = round(ordered[-1] / 1e6, 6)
    return metrics
