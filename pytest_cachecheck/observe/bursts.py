"""Cold bursts: how many callers filled one key after finding it cold together (stampedes).

Counted from observed commands alone, so the verdict rests on counts, not on clocks; the
clock only orders commands (one monotonic clock for every thread and task), and each
command carries its caller (the thread, or the asyncio task, that sent it).

SPEC 5.8: a cold burst "runs from a miss of the key while no value was cached until the
first read that hits; its fills are the writes of that key during the burst". Made
precise, per key, in order of the commands' start times:

* a **burst** opens at a read that misses the key when no burst is open, or when the open
  burst's first fill had become visible (completed) before that read started: the key is
  cold again (deleted by someone unobserved, expired);
* its **readers** are the reads that missed the key before its first fill became visible:
  the earliest moment a read can hit, so these are the misses "until the first read that
  hits", whatever order the callers' replies came back in;
* its **fills** are those readers' fills: a write of the key by a caller whose own latest
  read of the key in the burst missed. Each caller fills once at most, and one that has
  since seen a hit (it polled a lease) is updating the key, not filling a cold one. A fill
  that lands after another caller's hit is still a fill (a slow reader's late fill is the
  stampede). A write by a caller that did not read the key in the burst (a loader thread
  or task the reader handed the work to) fills for a reader still waiting (latest read a
  miss), one such write per waiting reader. The writes of one pipeline or MULTI/EXEC count
  once; commands that only change a key's expiry (``EXPIRE``, ``PERSIST``...) or take from
  it (``LPOP``...) are not fills; a conditional write that did not happen (``SET NX``
  answered nil) is not a write at all;
* it closes at a delete of the key, at the next cold read (above), or at the end.

Cost: one pass over the events plus a sort per key that was missed, only when a check or
``cache_bench.stampede`` asks; a key no read missed is never sorted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .commands import DELETE, HIT, MISS, WRITE
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
    """One cold burst of one key: its ``readers`` (misses before the first fill was visible),
    ``writes`` (every write of the key while it was open, a pipeline's once) and ``fills``."""

    key: str
    start_ns: int
    readers: int
    writes: int
    fills: int


_WAITING, _SERVED = 1, 2  # a reader's state: its latest read missed; it has since hit or filled


class _Open:
    __slots__ = (
        "key", "start_ns", "readers", "writes", "fills", "visible_ns", "last_pipeline", "callers", "waiting", "handed",
    )  # fmt: skip

    def __init__(self, key: str, start_ns: int) -> None:
        self.key = key
        self.start_ns = start_ns
        self.readers = 0
        self.writes = 0
        self.fills = 0
        self.visible_ns: int | None = None
        self.last_pipeline = 0
        self.callers: dict[int, int] = {}  # caller -> _WAITING or _SERVED
        self.waiting = 0  # callers whose latest read missed and who have not filled
        self.handed = 0  # of them, filled for by a caller that did not read the key (a loader)

    def served(self, caller: int) -> None:
        """``caller``, a waiting reader, has seen the value (a hit) or filled it."""
        self.callers[caller] = _SERVED
        self.waiting -= 1
        self.handed = min(self.handed, self.waiting)

    def closed(self) -> Burst:
        return Burst(self.key, self.start_ns, self.readers, self.writes, self.fills)


_Item = tuple[int, int, str, str, int, int]  # start_ns, index, outcome, command, pipeline_id, caller


def find_bursts(events: Sequence[Event], pattern: str = "*") -> list[Burst]:
    """Every cold burst of keys matching ``pattern``, in order of their first miss.

    Hits are sequenced only where they can change a count: right after the same caller's miss
    of the key (a caller's commands are recorded in the order it sent them, one at a time), so a
    read-through's stream of hits costs two look-ups each, and a key no read missed is never sorted.
    """
    match = matcher(pattern)
    pipeline_ns: dict[int, int] = defaultdict(int)  # a pipeline's records share its round trip
    per_key: dict[str, list[_Item]] = defaultdict(list)
    pending: dict[str, set[int]] = {}  # per missed key: the callers whose latest command on it missed
    for index, event in enumerate(events):
        if event.pipeline_id:
            pipeline_ns[event.pipeline_id] += event.duration_ns
        caller = event.caller
        for key, outcome in zip(event.keys, event.outcomes):
            if outcome == HIT:
                callers = pending.get(key)
                if not callers or caller not in callers:
                    continue
                callers.discard(caller)
            elif outcome == MISS:
                if not match(key):
                    continue
                callers = pending.get(key)
                if callers is None:
                    pending[key] = {caller}
                else:
                    callers.add(caller)
            elif outcome == WRITE or outcome == DELETE:
                if not match(key):
                    continue
                callers = pending.get(key)
                if callers:
                    callers.discard(caller)
            else:
                continue
            per_key[key].append((event.start_ns, index, outcome, event.command, event.pipeline_id, caller))
    bursts: list[Burst] = []
    for key in pending:  # a key no read missed has no burst: its commands are never sorted
        items = per_key[key]
        items.sort()
        bursts.extend(_bursts_of(key, items, events, pipeline_ns))
    bursts.sort(key=lambda burst: (burst.start_ns, burst.key))
    return bursts


def _bursts_of(
    key: str,
    items: Iterable[_Item],
    events: Sequence[Event],
    pipeline_ns: dict[int, int],
) -> list[Burst]:
    found: list[Burst] = []
    current: _Open | None = None
    for start, index, outcome, command, pipeline_id, caller in items:
        if outcome == HIT:
            if current is not None and current.callers.get(caller) == _WAITING:
                current.served(caller)  # it has seen the value: a later write of its is an update
        elif outcome == MISS:
            if current is None or (current.visible_ns is not None and start >= current.visible_ns):
                if current is not None:
                    found.append(current.closed())
                current = _Open(key, start)
            current.readers += 1
            if current.callers.get(caller) != _WAITING:
                current.callers[caller] = _WAITING
                current.waiting += 1
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
            state = current.callers.get(caller)
            if state == _WAITING:  # a reader that found the key cold fills it
                current.served(caller)
                current.fills += 1
            elif state is None and current.waiting > current.handed:  # a loader, for a reader still waiting
                current.handed += 1
                current.fills += 1
    if current is not None:
        found.append(current.closed())
    return found


def worst(bursts: Iterable[Burst]) -> Burst | None:
    """The burst with the most fills (then the most readers, then the earliest)."""
    return max(bursts, key=lambda burst: (burst.fills, burst.readers, -burst.start_ns), default=None)
