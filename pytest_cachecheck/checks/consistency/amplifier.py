"""Race amplification: seeded delays where cache races live, scaled to the code under test.

The stale-set race needs a write (its database write and its invalidation) to land
between a reader's miss and that reader's fill. The code under test decides how long
those paths take: a fakeredis cache-aside over a dict fills in microseconds, a Django
``save()`` on SQLite takes tens of milliseconds. Fixed delays of a couple of
milliseconds open the window for the first and almost never for the second, so the
delays here are *fractions* drawn from the seeded RNG, multiplied by scales measured
during the run (``Pacer``): the same seed draws the same fractions, so it replays the
same schedule, and each delay is as long as the layer under test needs.

A reader parked at its fill also asks for a write of that key (``Parking``): the next
worker that draws a write writes that key, and the parked reader goes on as soon as
that write was acknowledged. So a window that is opened is almost always exercised, and
no reader waits longer than it must.

Cost: one ``perf_counter_ns`` and a few dict operations per observed command of a
driver worker; nothing for commands of other threads (no schedule in their context).
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, fields
from time import perf_counter_ns
from typing import Any

from ...observe import instrument
from ...observe.commands import DELETE, HIT, MISS, classify
from ..history import READ

_MS = 1_000_000


@dataclass(frozen=True)
class Amplification:
    """Where the seeded delays go, how often, and how long at least (ms).

    ``fill_*``: before a cache fill that follows a miss (the stale-set race);
    ``read_*``: before reads (shuffles interleavings); ``invalidate_*``: after an
    invalidation, threads only (delete-before-write). With ``adaptive`` (the default)
    a fill delay ranges up to ``fill_scale`` times the measured time for another
    worker to start a write and land its invalidation, and an invalidation delay up to
    ``fill_scale`` times the measured miss-to-fill path, never below the ``*_max_ms``
    floors and never above ``longest_ms``. ``steer`` sends the next write to the key a
    parked reader is about to fill.
    """

    fill_probability: float = 0.5
    fill_max_ms: float = 2.0
    read_probability: float = 0.1
    read_max_ms: float = 0.5
    invalidate_probability: float = 0.5
    invalidate_max_ms: float = 2.0
    adaptive: bool = True
    fill_scale: float = 2.0
    steer: bool = True
    longest_ms: float = 250.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise ValueError(f"Amplification: {item.name} must be True or False, got {value!r}")
                continue
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if item.name.endswith("_probability"):
                if not valid or not 0 <= value <= 1:
                    raise ValueError(f"Amplification: {item.name} must be a number from 0 to 1, got {value!r}")
            elif not valid or value < 0:
                raise ValueError(f"Amplification: {item.name} must be a number >= 0, got {value!r}")


class Pacer:
    """The run's measured durations, as running means (exact: sums and counts, under a lock).

    ``write_path``: a write's start to the end of its first invalidating command (to its
    acknowledgement when it sent none). ``fill_path``: a read's miss to its fill, the
    layer's own source read. ``operation``: any operation, start to end. From them,
    ``write_wait_ns`` estimates how long a parked reader waits for another worker to draw
    a write (an operation over ``workers - 1`` workers each drawing writes at
    ``1 - read_ratio``) and for that write to land.
    """

    def __init__(self, workers: int, read_ratio: float) -> None:
        self._lock = threading.Lock()
        self._sums = {"write_path": 0, "fill_path": 0, "operation": 0}
        self._counts = {"write_path": 0, "fill_path": 0, "operation": 0}
        self._drawing = (workers - 1) * (1.0 - read_ratio)

    def add(self, name: str, duration_ns: int) -> None:
        with self._lock:
            self._sums[name] += duration_ns
            self._counts[name] += 1

    def mean_ns(self, name: str) -> float:
        count = self._counts[name]
        return self._sums[name] / count if count else 0.0

    def write_wait_ns(self) -> float:
        if self._drawing <= 0:
            return 0.0  # nobody else writes: no concurrent invalidation to wait for
        return self.mean_ns("operation") / self._drawing + self.mean_ns("write_path")

    def means_ms(self) -> dict[str, float]:
        return {name: round(self.mean_ns(name) / _MS, 3) for name in self._sums}


class Parking:
    """Readers parked at a fill, per driver key, and the writes acknowledged per key.

    Shared by a run's workers (threads or tasks on one loop). ``steer`` picks the key a
    write goes to; ``landed`` wakes the readers parked on a key when a write of it was
    acknowledged.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._parked: dict[Any, int] = {}
        self._writing: set[Any] = set()
        self._landed: dict[Any, int] = {}
        self._events: dict[Any, asyncio.Event] = {}

    def steer(self, drawn: Any) -> Any:
        """The key to write: one a reader is parked on (and nobody writes), else ``drawn``."""
        with self._lock:
            if self.enabled:
                for key, parked in self._parked.items():
                    if parked and key not in self._writing:
                        drawn = key
                        break
            self._writing.add(drawn)
            return drawn

    def landed(self, key: Any) -> None:
        with self._condition:
            self._writing.discard(key)
            self._landed[key] = self._landed.get(key, 0) + 1
            self._condition.notify_all()
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def wait(self, key: Any, seconds: float) -> None:
        """Park (a thread) up to ``seconds``, or until a write of ``key`` was acknowledged."""
        with self._condition:
            seen = self._landed.get(key, 0)
            self._parked[key] = self._parked.get(key, 0) + 1
            try:
                self._condition.wait_for(lambda: self._landed.get(key, 0) > seen, timeout=seconds)
            finally:
                self._parked[key] -= 1

    async def wait_async(self, key: Any, seconds: float) -> None:
        """Park (a task) up to ``seconds``, or until a write of ``key`` was acknowledged."""
        event = self._events.setdefault(key, asyncio.Event())
        with self._lock:
            self._parked[key] = self._parked.get(key, 0) + 1
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._parked[key] -= 1


class Schedule:
    """One driver worker: its seeded delay decisions and what its current operation did so far."""

    def __init__(
        self,
        name: str,
        seed: int,
        amplification: Amplification | None,
        *,
        is_async: bool,
        pacer: Pacer | None = None,
        parking: Parking | None = None,
    ) -> None:
        self.name = name
        self.rng = random.Random(f"{seed}/delays/{name}")
        self.amplification = amplification
        self.is_async = is_async
        self.pacer = pacer
        self.parking = parking
        self.kind = READ
        self.key: Any = None
        self.started_ns = 0
        self.missed = False
        self.missed_ns = 0
        self.invalidated = False
        self.sent_ns = 0

    def begin_operation(self, kind: str = READ, key: Any = None) -> None:
        self.kind, self.key = kind, key
        self.started_ns = perf_counter_ns()
        self.missed = False
        self.invalidated = False

    def delay_before(self, commands: list[tuple[Any, ...]]) -> float:
        """Seconds to sleep before sending ``commands`` (a fill after a miss, or a read)."""
        plan = self.amplification
        if plan is None:
            return 0.0
        is_read = all(classify(args, None)[2][0] in (HIT, MISS) for args in commands)
        if is_read:
            return self._draw(plan.read_probability, plan.read_max_ms, 0.0)
        if self.missed:
            self.missed = False
            wait = self.pacer.write_wait_ns() if self.pacer is not None and plan.adaptive else 0.0
            return self._draw(plan.fill_probability, plan.fill_max_ms, wait)
        return 0.0

    def delay_after(self, outcomes: tuple[str, ...]) -> float:
        """Seconds to sleep after an invalidation (threads only: ``after`` cannot await)."""
        plan = self.amplification
        if plan is None or self.is_async or DELETE not in outcomes:
            return 0.0
        path = self.pacer.mean_ns("fill_path") if self.pacer is not None and plan.adaptive else 0.0
        return self._draw(plan.invalidate_probability, plan.invalidate_max_ms, path)

    def _draw(self, probability: float, floor_ms: float, measured_ns: float) -> float:
        """A seeded fraction of the delay's scale: the floor, or ``fill_scale`` x the measured path."""
        if self.rng.random() >= probability:
            return 0.0
        fraction = self.rng.random()
        plan = self.amplification
        assert plan is not None
        scale_ms = max(floor_ms, min(plan.fill_scale * measured_ns / _MS, plan.longest_ms))
        return fraction * scale_ms / 1000.0


# (worker, sent_ns, done_ns, args, reply)
TraceEntry = tuple[str, int, int, tuple[Any, ...], Any]
_current: ContextVar[Schedule | None] = ContextVar("pytest_cachecheck_consistency_worker", default=None)


def bind(schedule: Schedule | None) -> Any:
    """Make ``schedule`` the current worker's (a token for ``unbind``)."""
    return _current.set(schedule)


def unbind(token: Any) -> None:
    _current.reset(token)


class Amplifier(instrument.Interceptor):
    """Seeded delays for driver workers (outside command timings), their command trace and race windows.

    ``fills`` are the reads' miss-to-fill intervals ``(key, missed_ns, filled_ns)``;
    ``landings`` the times a write's invalidating commands completed, per driver key
    (its acknowledgement when it sent none): ``windows()`` counts the fills a landing
    fell into.
    """

    def __init__(self) -> None:
        self.trace: list[TraceEntry] = []
        self.fills: list[tuple[Any, int, int]] = []
        self.landings: dict[Any, list[int]] = {}
        self._lock = threading.Lock()

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        schedule = _current.get()
        if schedule is None:
            return
        filling = self._filling(schedule, commands)
        delay = schedule.delay_before(commands)
        if delay:
            if filling and schedule.parking is not None:
                schedule.parking.wait(schedule.key, delay)
            else:
                time.sleep(delay)
        self._sent(schedule, filling)

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        schedule = _current.get()
        if schedule is None:
            return
        filling = self._filling(schedule, commands)
        delay = schedule.delay_before(commands)
        if delay:
            if filling and schedule.parking is not None:
                await schedule.parking.wait_async(schedule.key, delay)
            else:
                await asyncio.sleep(delay)
        self._sent(schedule, filling)

    @staticmethod
    def _filling(schedule: Schedule, commands: list[tuple[Any, ...]]) -> bool:
        """A read's first command after a miss that is not itself a read: its fill."""
        if schedule.kind != READ or not schedule.missed:
            return False
        filling = not all(classify(args, None)[2][0] in (HIT, MISS) for args in commands)
        if filling and schedule.pacer is not None:
            schedule.pacer.add("fill_path", perf_counter_ns() - schedule.missed_ns)
        return filling

    def _sent(self, schedule: Schedule, filling: bool) -> None:
        schedule.sent_ns = perf_counter_ns()
        if filling:
            schedule.missed = False
            with self._lock:
                self.fills.append((schedule.key, schedule.missed_ns, schedule.sent_ns))

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        schedule = _current.get()
        if schedule is None:
            return
        done = perf_counter_ns()
        self.trace.append((schedule.name, schedule.sent_ns, done, args, reply))
        outcomes = classify(args, reply)[2]
        if schedule.kind == READ:
            if MISS in outcomes:
                schedule.missed, schedule.missed_ns = True, done
        elif not schedule.invalidated and not all(outcome in (HIT, MISS) for outcome in outcomes):
            self.landed(schedule, done)
        delay = schedule.delay_after(outcomes)
        if delay:
            time.sleep(delay)

    def landed(self, schedule: Schedule, done_ns: int) -> None:
        """A write's first invalidating command completed, or (none sent) the write was acknowledged."""
        if schedule.invalidated:
            return
        schedule.invalidated = True
        if schedule.pacer is not None:
            schedule.pacer.add("write_path", done_ns - schedule.started_ns)
        with self._lock:
            self.landings.setdefault(schedule.key, []).append(done_ns)

    def windows(self) -> int:
        """Fills that a write of the same key landed inside (between the miss and the fill)."""
        landings = {key: sorted(times) for key, times in self.landings.items()}
        count = 0
        for key, missed, filled in self.fills:
            times = landings.get(key)
            if times and bisect_left(times, filled) > bisect_right(times, missed):
                count += 1
        return count


def commands_of(operations: Sequence[Any], trace: list[TraceEntry], limit: int) -> list[TraceEntry]:
    """The Redis commands each operation issued itself: same worker, inside the operation's interval."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for op in operations:
        spans.setdefault(op.process, []).append((op.start_ns, op.end_ns))
    own = [
        entry for entry in trace if any(start <= entry[1] and entry[2] <= end for start, end in spans.get(entry[0], ()))
    ]
    return own[:limit]
