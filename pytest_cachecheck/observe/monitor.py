"""``cache_monitor``: what the code under test did to Redis during one test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

from .aggregate import CacheStats, compute_stats
from .commands import written_key_texts
from .events import Event, classify_raw
from .instrument import RawEvent, state
from .patterns import MATCH_ALL
from .probe import probes, route_baseline

T = TypeVar("T")


class CacheMonitor:
    """Records every observed command while active; classifies them only when asked.

    Commands issued inside ``with monitor.warmup():`` are kept out of ``events`` and
    therefore out of every assertion and run-wide target.
    """

    def __init__(self) -> None:
        self._raw: list[RawEvent] = []
        self._warmup_ranges: list[tuple[int, int]] = []
        self._classified: list[Event] = []
        self._warmup_depth = 0
        self._warmup_start = 0
        self._previous: list[RawEvent] | None = None
        self._before_reset: list[list[RawEvent]] = []
        self._previous_baseline: list[tuple[int, int]] | None = None
        self.baseline: list[tuple[int, int]] = []  # (start_ns, duration_ns) of the probes, see ``probe.py``
        self.active = False

    def activate(self) -> None:
        """Route observed commands into this monitor (a nested pytest run's monitor stacks)."""
        self._previous = state.log
        self._previous_baseline = probes.baseline
        state.log = self._raw
        route_baseline(self.baseline)
        self.active = True

    def deactivate(self) -> None:
        if state.log is self._raw:
            state.log = self._previous
        if probes.baseline is self.baseline:
            route_baseline(self._previous_baseline)
        self._previous = None
        self._previous_baseline = None
        self.active = False

    def reset(self) -> None:
        """Forget everything recorded so far in this test; what it wrote is still cleaned up after it.

        The old log is kept, not read now: a writer thread that fetched it just before the swap
        may still append to it, and its write must stay known (``written_keys``).
        """
        old, self._raw = self._raw, []
        if self.active:
            state.log = self._raw
        self._before_reset.append(old)
        self._warmup_ranges = []
        self._classified = []
        self._warmup_start = 0

    @contextlib.contextmanager
    def warmup(self) -> Iterator[None]:
        """Exclude the commands issued inside from assertions (cache priming, fixtures)."""
        if self._warmup_depth == 0:
            self._warmup_start = len(self._raw)
        self._warmup_depth += 1
        try:
            yield
        finally:
            self._warmup_depth -= 1
            if self._warmup_depth == 0:
                self._warmup_ranges.append((self._warmup_start, len(self._raw)))

    def _all_events(self) -> list[Event]:
        raw = self._raw
        done = len(self._classified)
        if done < len(raw):
            self._classified.extend(classify_raw(raw[done : len(raw)]))
        return self._classified

    def _outside_warmup(self, items: list[T]) -> list[T]:
        if not self._warmup_ranges:
            return list(items)
        kept = []
        previous_end = 0
        for start, end in self._warmup_ranges:
            kept.extend(items[previous_end:start])
            previous_end = end
        kept.extend(items[previous_end:])
        return kept

    @property
    def events(self) -> list[Event]:
        """Observed commands in order, without those inside ``warmup()`` blocks."""
        return self._outside_warmup(self._all_events())

    @property
    def warmup_events(self) -> list[Event]:
        """Commands issued inside ``warmup()`` blocks: kept out of assertions, yet server-side
        counters (``INFO commandstats``) saw them, so checks comparing with those need them."""
        events = self._all_events()
        return [event for start, end in self._warmup_ranges for event in events[start:end]]

    @property
    def records(self) -> list[RawEvent]:
        """The raw records behind ``events``, index for index: arguments as sent (TTL options)."""
        return self._outside_warmup(self._raw)

    def raw_since(self, index: int) -> list[RawEvent]:
        """Every record from position ``index`` of the raw log on (``raw_count`` taken earlier), warm-up
        included: what one call sent (``cache_bench.cost``)."""
        return self._raw[index:]

    @property
    def raw_count(self) -> int:
        """How many commands were recorded, warm-up included (cheap: no classification)."""
        return len(self._raw)

    def stats(self, pattern: str = MATCH_ALL) -> CacheStats:
        """Hits, misses, writes, deletes, hit rate, latency and command counts for ``pattern``."""
        return compute_stats(self.events, pattern)

    def written_keys(self) -> set[str]:
        """Keys this test may have written or named in scripts, warm-up and commands before ``reset()``
        included, for clean-up; exact as sent (``commands.sent_key_bytes`` gives the bytes)."""
        return {key for records in (*self._before_reset, self._raw) for key in _written_in(records)}


def _written_in(records: Iterable[RawEvent]) -> set[str]:
    return {key for record in records for key in written_key_texts(record[2])}
