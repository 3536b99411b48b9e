"""Events: the classified form of the raw records the instrumentation appends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .commands import HIT, MISS, classify
from .instrument import RawEvent


class Event(NamedTuple):
    """One Redis command as the code under test issued it (a named tuple: cheap to build).

    ``keys`` and ``outcomes`` run in parallel: ``MGET a b c`` with one nil has three
    keys and outcomes ``("hit", "miss", "hit")``; ``HMGET h f1 f2`` repeats ``h`` once
    per field. A command without keys has ``keys == ()`` and one outcome.
    """

    start_ns: int
    duration_ns: int
    command: str
    keys: tuple[str, ...]
    outcomes: tuple[str, ...]
    pipeline_id: int

    @property
    def outcome(self) -> str:
        """The single outcome; a multi-key read with any miss counts as ``miss``, with only hits as
        ``hit``; otherwise the first key's (``SUNIONSTORE dest a b`` writes ``dest``: ``write``)."""
        first = self.outcomes[0]
        if all(outcome == first for outcome in self.outcomes):
            return first
        if MISS in self.outcomes:
            return MISS
        return HIT if HIT in self.outcomes else first

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6


def classify_raw(records: Iterable[RawEvent]) -> list[Event]:
    """Turn raw records into events (done lazily, when someone asks)."""
    return [
        Event(start, duration, *classify(args, reply), pipeline_id)
        for start, duration, args, reply, pipeline_id in records
    ]
