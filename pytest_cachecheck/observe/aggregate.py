"""Aggregation of events into per-pattern cache statistics (done on demand, never per command)."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from .commands import DELETE, ERROR, HIT, MISS, WRITE
from .events import Event
from .instrument import LOCAL
from .patterns import MATCH_ALL, key_shape, matcher
from .sizes import payload_total, written_sizes


def nearest_rank(count: int, fraction: float) -> int:
    """The 1-based rank of the nearest-rank percentile among ``count`` values (at least 1)."""
    return max(1, math.ceil(fraction * count))


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of values <= it."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    return sorted_values[nearest_rank(len(sorted_values), fraction) - 1]


@dataclass(frozen=True)
class LatencyStats:
    """Command latency percentiles in milliseconds (None when no command was seen)."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def from_durations_ns(cls, durations_ns: Iterable[int]) -> LatencyStats:
        values = sorted(duration / 1e6 for duration in durations_ns)
        if not values:
            return cls(0, None, None, None, None)
        return cls(
            len(values),
            percentile(values, 0.50),
            percentile(values, 0.95),
            percentile(values, 0.99),
            values[-1],
        )


class HitRate:
    """``reads`` and ``hit_rate`` of anything that counts ``hits`` and ``misses``."""

    hits: int
    misses: int

    @property
    def reads(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        """hits / reads, or None when nothing was read."""
        return self.hits / self.reads if self.reads else None


@dataclass(frozen=True)
class CacheStats(HitRate):
    """What the code under test did to keys matching one pattern.

    ``hits`` include ``local_hits``, reads redis-py's client-side cache answered without a
    round trip (``latency`` leaves those out: it is the server's). ``bytes_written`` and
    ``bytes_read`` are value bytes (``observe.sizes``) of writes and hits; ``max_value_bytes``
    is the largest value one write stored (None without writes), under ``max_value_key``.
    Those four are worked out from ``events`` on first use (``value_bytes``): stats that are
    only asked for a hit rate (the common case) never pay for sizes.
    """

    pattern: str
    hits: int
    misses: int
    writes: int
    deletes: int
    errors: int
    latency: LatencyStats
    commands: Counter[str] = field(default_factory=Counter)
    miss_keys: Counter[str] = field(default_factory=Counter)
    local_hits: int = 0
    events: tuple[Event, ...] = field(default=(), repr=False, compare=False)  # those touching a matching key

    @functools.cached_property
    def _sizes(self) -> tuple[int, int, tuple[int, str] | None]:
        return value_bytes(self.events, self.pattern)

    @property
    def bytes_written(self) -> int:
        return self._sizes[0]

    @property
    def bytes_read(self) -> int:
        return self._sizes[1]

    @property
    def max_value_bytes(self) -> int | None:
        largest = self._sizes[2]
        return None if largest is None else largest[0]

    @property
    def max_value_key(self) -> str | None:
        largest = self._sizes[2]
        return None if largest is None else largest[1]

    @property
    def server_hits(self) -> int:
        """Hits that took a round trip (``hits`` less those the client's local cache answered)."""
        return self.hits - self.local_hits

    @property
    def miss_shapes(self) -> Counter[str]:
        """Misses grouped by key shape (``user:*:profile``): the top contributors in messages."""
        shapes: Counter[str] = Counter()
        for key, count in self.miss_keys.items():
            shapes[key_shape(key)] += count
        return shapes


def compute_stats(events: Iterable[Event], pattern: str = MATCH_ALL) -> CacheStats:
    """Count outcomes of keys matching ``pattern``; ``"*"`` also counts keyless commands.

    A pattern is matched once per distinct key (the answer kept in a dict), and the events that
    touched a matching key are kept for the sizes, which then never match a single-key event again.
    """
    match = matcher(pattern)
    match_all = pattern == MATCH_ALL
    matches: dict[str, bool] = {}
    kept: list[Event] = []
    counts: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    miss_keys: Counter[str] = Counter()
    durations = []
    local_hits = 0
    events = tuple(events)  # kept for the sizes, worked out on first use (a copy at C speed)
    for event in events:
        if not event.keys:
            if not match_all:
                continue
            counts[event.outcomes[0]] += 1
        else:
            matched = False
            for key, outcome in zip(event.keys, event.outcomes):
                if not match_all:
                    found = matches.get(key)
                    if found is None:
                        found = matches[key] = bool(match(key))
                    if not found:
                        continue
                matched = True
                counts[outcome] += 1
                if outcome == MISS:
                    miss_keys[key] += 1
                elif outcome == HIT and event.pipeline_id == LOCAL:
                    local_hits += 1
            if not matched:
                continue
            if not match_all:
                kept.append(event)
        commands[event.command] += 1
        if event.pipeline_id != LOCAL:
            durations.append(event.duration_ns)
    return CacheStats(
        pattern=pattern,
        hits=counts[HIT],
        misses=counts[MISS],
        writes=counts[WRITE],
        deletes=counts[DELETE],
        errors=counts[ERROR],
        latency=LatencyStats.from_durations_ns(durations),
        commands=commands,
        miss_keys=miss_keys,
        local_hits=local_hits,
        events=events if match_all else tuple(kept),
    )


_HIT_ONLY = (HIT,)
_WRITE_ONLY = (WRITE,)
_COMMAND, _ARGS, _REPLY = itemgetter(2), itemgetter(6), itemgetter(7)  # of an Event


def value_bytes(events: Iterable[Event], pattern: str = MATCH_ALL) -> tuple[int, int, tuple[int, str] | None]:
    """Value bytes written and read to keys matching ``pattern``, and (bytes, key) of the biggest write.

    ``events`` are those that touched a matching key (``compute_stats`` keeps them so): a
    single-key event's key matches already; only a multi-key command's keys are matched again.

    What it costs, paid only when a size is asked for: one pass that sorts out the single-key
    hits and writes (a tuple comparison each, no call; ~50 ns an event), then work on those
    alone, at C speed where it can: the hits' replies summed in bulk (``sizes.payload_total``:
    ``len`` of bytes), the writes per command (``sizes.written_sizes``: the value's position
    looked up once), no pattern matched on a single-key event. Multi-key commands (rare) go key
    by key. A single-key hit or write always names its key (``commands.classify``).
    """
    hits: list[Event] = []
    writes: list[Event] = []
    multi: list[Event] = []
    add_hit, add_write = hits.append, writes.append
    for event in events:
        outcomes = event[4]  # positions, not names: a named field costs a lookup more per event
        if outcomes == _HIT_ONLY:
            add_hit(event)
        elif outcomes == _WRITE_ONLY:
            add_write(event)
        elif len(outcomes) > 1:
            multi.append(event)
    match = None if pattern == MATCH_ALL or not multi else matcher(pattern)
    read = payload_total(list(map(_REPLY, hits)))
    written = 0
    largest: tuple[int, str] | None = None
    commands = set(map(_COMMAND, writes))
    for command in commands:
        group = writes if len(commands) == 1 else [event for event in writes if event[2] == command]
        sizes = written_sizes(command, list(map(_ARGS, group)))
        written += sum(sizes)
        biggest = max(sizes)
        if largest is None or biggest > largest[0]:
            largest = (biggest, group[sizes.index(biggest)][3][0])
    for event in multi:
        for key, outcome, size in zip(event.keys, event.outcomes, event.value_sizes):
            if match is not None and not match(key):
                continue
            if outcome == WRITE:
                written += size
                if largest is None or size > largest[0]:
                    largest = (size, key)
            elif outcome == HIT:
                read += size
    return written, read, largest


def drop_first_reads(events: Sequence[Event], pattern: str, count: int) -> list[Event]:
    """Events after the first ``count`` reads of keys matching ``pattern`` (marker ``warmup=``)."""
    if count <= 0:
        return list(events)
    match = matcher(pattern)
    seen = 0
    for index, event in enumerate(events):
        for key, outcome in zip(event.keys, event.outcomes):
            if outcome in (HIT, MISS) and match(key):
                seen += 1
        if seen >= count:
            return list(events[index + 1 :])
    return []
