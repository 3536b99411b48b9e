"""Cold bursts: how many callers filled one key after finding it cold together (stampedes).

Counted from observed commands alone, so the verdict rests on counts, not on clocks;
the clock only orders commands (one monotonic clock for every thread and task).

Per key, in order of the commands' start times:

* a **burst** opens at a read that misses the key when no burst is open, or when the
  open burst's first fill had become visible (completed) before that read started: the
  key is cold again (deleted by someone unobserved, expired);
* its **readers** are the reads of the key that missed and started before the burst's
  first fill became visible: the callers that found the key cold;
* its **fills** are the writes of the key while it is open, counted up to its readers
  (each caller that found the key cold fills it once at most, so a later update of the
  key by the same code is not a second fill). The writes of one pipeline or MULTI/EXEC
  count once; commands that only change a key's expiry (``EXPIRE``, ``PERSIST``...) or
  take from it (``LPOP``...) are not fills; a conditional write that did not happen
  (``SET NX`` answered nil) is not a write at all;
* it closes at a delete of the key, at the next cold read (above), or at the end.

Hits do not close a burst: a fast caller's hit may come before a slow caller's late
fill, and that fill is still part of the stampede. Cost: one pass over the events plus
a sort per key, only when a check or ``cache_bench.stampede`` asks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .commands import DELETE, MISS, WRITE
from .events import Event
from .patterns import matcher

# Writes that are not fills: they change a key's expiry, or take from it.
NOT_FILLS = frozenset(
    {
        "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "HEXPIRE", "HPEXPIRE",
        "LPOP", "RPOP", "SPOP", "ZPOPMIN", "ZPOPMAX",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Burst:
    """One cold burst of one key: ``fills`` (up to ``readers``) and ``readers`` (misses before the first fill)."""

    key: str
    start_ns: int
    readers: int
    writes: int

    @property
    def fills(self) -> int:
        return min(self.writes, self.readers)


class _Open:
    __slots__ = ("key", "start_ns", "readers", "writes", "visible_ns", "last_pipeline")

    def __init__(self, key: str, start_ns: int) -> None:
        self.key = key
        self.start_ns = start_ns
        self.readers = 0
        self.writes = 0
        self.visible_ns: int | None = None
        self.last_pipeline = 0

    def closed(self) -> Burst:
        return Burst(self.key, self.start_ns, self.readers, self.writes)


def find_bursts(events: Sequence[Event], pattern: str = "*") -> list[Burst]:
    """Every cold burst of keys matching ``pattern``, in order of their first miss."""
    match = matcher(pattern)
    pipeline_ns: dict[int, int] = defaultdict(int)  # a pipeline's records share its round trip
    per_key: dict[str, list[tuple[int, int, str, str, int]]] = defaultdict(list)
    for index, event in enumerate(events):
        if event.pipeline_id:
            pipeline_ns[event.pipeline_id] += event.duration_ns
        for key, outcome in zip(event.keys, event.outcomes):
            if outcome in (MISS, WRITE, DELETE) and match(key):
                per_key[key].append((event.start_ns, index, outcome, event.command, event.pipeline_id))
    bursts: list[Burst] = []
    for key, items in per_key.items():
        items.sort()
        bursts.extend(_bursts_of(key, items, events, pipeline_ns))
    bursts.sort(key=lambda burst: (burst.start_ns, burst.key))
    return bursts


def _bursts_of(
    key: str,
    items: Iterable[tuple[int, int, str, str, int]],
    events: Sequence[Event],
    pipeline_ns: dict[int, int],
) -> list[Burst]:
    found: list[Burst] = []
    current: _Open | None = None
    for start, index, outcome, command, pipeline_id in items:
        if outcome == MISS:
            if current is None or (current.visible_ns is not None and start >= current.visible_ns):
                if current is not None:
                    found.append(current.closed())
                current = _Open(key, start)
            current.readers += 1
        elif outcome == DELETE:
            if current is not None:
                found.append(current.closed())
            current = None
        elif current is not None and command not in NOT_FILLS:
            if pipeline_id and pipeline_id == current.last_pipeline:
                continue  # the same pipeline's second write of the key: one fill
            current.last_pipeline = pipeline_id
            current.writes += 1
            if current.visible_ns is None:
                duration = pipeline_ns[pipeline_id] if pipeline_id else events[index].duration_ns
                current.visible_ns = start + duration
    if current is not None:
        found.append(current.closed())
    return found


def worst(bursts: Iterable[Burst]) -> Burst | None:
    """The burst with the most fills (then the most readers, then the earliest)."""
    return max(bursts, key=lambda burst: (burst.fills, burst.readers, -burst.start_ns), default=None)
