"""Events: the classified form of the raw records the instrumentation appends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from . import sizes
from .commands import HIT, MISS, classify
from .instrument import LOCAL, RawEvent


class Event(NamedTuple):
    """One Redis command as the code under test issued it (a named tuple: cheap to build).

    ``keys`` and ``outcomes`` run in parallel: ``MGET a b c`` with one nil has three
    keys and outcomes ``("hit", "miss", "hit")``; ``HMGET h f1 f2`` repeats ``h`` once
    per field. A command without keys has ``keys == ()`` and one outcome.

    ``args`` and ``reply`` are the raw record's (the reply is the exception when the command
    failed): sizes are worked out from them only when asked (``observe.sizes``). ``caller``
    tells who sent it: the thread's identifier, or the id of the asyncio task (0: unknown).
    """

    start_ns: int
    duration_ns: int
    command: str
    keys: tuple[str, ...]
    outcomes: tuple[str, ...]
    pipeline_id: int
    args: tuple[Any, ...] = ()
    reply: Any = None
    caller: int = 0

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

    @property
    def local(self) -> bool:
        """A read the client answered from its own cache (redis-py ``cache_config``): no round trip."""
        return self.pipeline_id == LOCAL

    @property
    def bytes_sent(self) -> int:
        """Payload bytes of the arguments (``observe.sizes``); 0 for a local hit, which sent nothing."""
        return 0 if self.local else sizes.bytes_sent(self.args)

    @property
    def bytes_received(self) -> int:
        """Payload bytes of the reply; 0 for a local hit, which received nothing."""
        return 0 if self.local else sizes.bytes_received(self.reply)

    @property
    def value_sizes(self) -> tuple[int, ...]:
        """Value bytes per key, parallel to ``keys``: written by a write, read by a hit, else 0."""
        if not self.keys:
            return ()
        return sizes.value_sizes(self.command, self.args, self.reply, self.keys, self.outcomes)


def classify_raw(records: Iterable[RawEvent]) -> list[Event]:
    """Turn raw records into events (done lazily, when someone asks)."""
    return [
        Event(start, duration, *classify(args, reply), pipeline_id, args, reply, caller)
        for start, duration, args, reply, pipeline_id, caller in records
    ]
