"""``cache_consistency``: drive or record a workload, check it for stale reads, and the marker.

Driver mode (``driver.py``) runs the application's own ``read(key)`` and
``write(key, value)`` from several threads or asyncio tasks, with unique values and writes
serialised per key, so the checker in ``history.py`` can judge every read. Race
amplification (``amplifier.py``) hooks into the observation layer and sleeps, with a
seeded schedule scaled to the measured paths of the code under test, where cache races
live; it also counts how often the race was exercised (``windows``). After the run, a
quiescent pass compares what the cache serves with the source of truth.

Record mode (``record.py``) is for workloads the test drives itself:
``with cache_consistency.write(k, v)`` and ``with cache_consistency.read(k) as r: r.value = ...``;
then ``check()``. The marker is in ``marker.py``, the progress line in ``progress.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from ...observe import instrument
from ...observe.commands import classify
from ..base import Measurement, TestContext
from ..drive import handed_out, is_async
from ..history import ConsistencyReport, Operation, TracedCommand, Violation, check_history
from .amplifier import Amplification, TraceEntry, commands_of
from .driver import Driver, NotAwaited, drive_tasks, drive_threads, make_plan, run_async, run_sync
from .marker import CHECK, DATA_KEY, MARKER, RECORDERS_KEY, SPEC, marker_bound
from .progress import Progress, terminal_progress
from .record import ReadRecord, Recorder

__all__ = [
    "CHECK",
    "MARKER",
    "SPEC",
    "Amplification",
    "CacheConsistency",
    "ReadRecord",
    "marker_bound",
    "terminal_progress",
]

_TIMELINE_COMMANDS = 24


class CacheConsistency:
    """The ``cache_consistency`` fixture: stale-read detection by driving or recording a workload."""

    def __init__(
        self,
        context: TestContext | None,
        *,
        client_factory: Callable[[], Any] | None = None,
        progress: Callable[[str], None] | None = None,
        default_max_staleness_ms: float = 0.0,
    ) -> None:
        self._context = context
        self._client_factory = client_factory
        self._progress = progress
        self._default_bound = default_max_staleness_ms
        self._versions: dict[Any, Iterator[int]] = {}
        self._recorder = Recorder()
        self._checked_upto = 0
        self._recorded_entry: tuple[ConsistencyReport, Measurement | None] | None = None
        self.reports: list[ConsistencyReport] = []
        if context is not None:
            context.data[RECORDERS_KEY].append(self)

    # ------------------------------------------------------------ driver mode

    def run(
        self,
        read: Callable[[Any], Any],
        write: Callable[[Any, Any], Any],
        keys: int | Sequence[Any] = 16,
        threads: int = 4,
        ops: int = 2000,
        read_ratio: float = 0.9,
        amplify: bool | Amplification = True,
        seed: int | None = None,
        *,
        truth: Callable[[Any], Any] | None = None,
        max_staleness_ms: float | None = None,
    ) -> Any:
        """Run ``ops`` reads and writes from ``threads`` workers and check the history.

        Returns a ``ConsistencyReport``. With an ``async def`` among the callables it returns
        a coroutine instead, which runs ``threads`` asyncio tasks on the awaiting loop:
        ``await cache_consistency.run(...)`` (the convention of every fixture method). The
        arguments are checked at the call either way. ``truth(key)`` reads the source of
        truth for the convergence check; without it the last acknowledged write is the
        truth. A plain callable that returns an awaitable is an error.
        """
        __tracebackhide__ = True
        asynchronous = is_async(read, write, truth)
        driver = self._driver(
            read, write, truth, keys, threads, ops, read_ratio, amplify, seed, max_staleness_ms, is_async=asynchronous
        )
        if asynchronous:
            return handed_out(self._run_tasks(driver), "cache_consistency.run")
        try:
            with instrument.intercepting(driver.amplifier):
                run_sync(driver.setup(), {key: threading.Lock() for key in driver.plan.keys})
                drive_threads(driver)
                driver.progress.finish()
                divergences = run_sync(driver.converge(self._client_factory), {})
        except NotAwaited as exc:
            raise TypeError(str(exc)) from None  # one line, from the test's own frame
        return self._finish(driver, divergences)

    async def _run_tasks(self, driver: Driver) -> ConsistencyReport:
        """``run`` for ``async def`` callables: ``threads`` concurrent tasks on the running loop."""
        __tracebackhide__ = True
        with instrument.intercepting(driver.amplifier):
            await run_async(driver.setup(), {key: asyncio.Lock() for key in driver.plan.keys})
            await drive_tasks(driver)
            driver.progress.finish()
            divergences = await run_async(driver.converge(self._client_factory), {})
        return self._finish(driver, divergences)

    def _driver(
        self,
        read: Callable[[Any], Any],
        write: Callable[[Any, Any], Any],
        truth: Callable[[Any], Any] | None,
        keys: int | Sequence[Any],
        threads: int,
        ops: int,
        read_ratio: float,
        amplify: bool | Amplification,
        seed: int | None,
        max_staleness_ms: float | None,
        *,
        is_async: bool = False,
    ) -> Driver:
        for name, function in (("read", read), ("write", write), ("truth", truth)):
            if not callable(function) and not (name == "truth" and function is None):
                raise TypeError(f"cache_consistency.run: {name} must be a callable, got {function!r}")
        plan = make_plan(keys, threads, ops, read_ratio, amplify, seed, self._bound(max_staleness_ms))
        progress = Progress(plan.ops, self._progress, inline=is_async)
        return Driver(plan, read, write, truth, self._next_value, progress, is_async=is_async)

    def _bound(self, max_staleness_ms: float | None) -> float:
        if max_staleness_ms is None:
            return self._default_bound
        if (
            not isinstance(max_staleness_ms, (int, float))
            or isinstance(max_staleness_ms, bool)
            or not max_staleness_ms >= 0
        ):
            raise ValueError(f"cache_consistency: max_staleness_ms must be a number >= 0, got {max_staleness_ms!r}")
        return float(max_staleness_ms)

    def _next_value(self, key: Any) -> str:
        counter = self._versions.setdefault(key, itertools.count(1))
        return f"{key}#{next(counter)}"

    def _finish(self, driver: Driver, divergences: tuple[Any, ...]) -> ConsistencyReport:
        plan, amplifier = driver.plan, driver.amplifier
        observed = instrument.state.log is not None
        report = check_history(driver.history, max_staleness_ms=plan.max_staleness_ms)
        report = replace(
            report,
            divergences=divergences,
            seed=plan.seed,
            amplified=plan.amplification is not None and observed,
            windows=amplifier.windows() if observed else None,
            fills=len(amplifier.fills) if observed else None,
            violations=tuple(_with_commands(violation, amplifier.trace) for violation in report.violations),
        )
        self._register(report)
        return report

    # ------------------------------------------------------------ record mode

    def write(self, key: Any, value: Any) -> contextlib.AbstractContextManager[None]:
        """Record the write of ``value`` to ``key`` that the block performs (its interval)."""
        return self._recorder.write(key, value)

    def read(self, key: Any) -> contextlib.AbstractContextManager[ReadRecord]:
        """Record the read the block performs; set ``.value`` on the yielded record to its result."""
        return self._recorder.read(key)

    def check(self, max_staleness_ms: float | None = None) -> ConsistencyReport:
        """Check everything recorded so far; the report replaces this fixture's previous one."""
        recorded = self._recorder.operations
        report = check_history(list(recorded), max_staleness_ms=self._bound(max_staleness_ms))
        if self._recorded_entry is not None and self._context is not None:
            previous_report, previous_measurement = self._recorded_entry
            data, measurements = self._context.data, self._context.measurements
            data[DATA_KEY] = [item for item in data[DATA_KEY] if item is not previous_report]
            measurements[:] = [item for item in measurements if item is not previous_measurement]
        self._checked_upto = len(recorded)
        self._recorded_entry = (report, self._register(report))
        return report

    def flush(self) -> None:
        """Check what record mode collected since the last ``check()`` (the marker calls this)."""
        if len(self._recorder.operations) > self._checked_upto:
            self.check()

    # ------------------------------------------------------------ registration

    def _register(self, report: ConsistencyReport) -> Measurement | None:
        """Into the test's context: the report for the marker, a measurement for run-wide targets."""
        self.reports.append(report)
        if self._context is None:
            return None
        self._context.data[DATA_KEY].append(report)
        detail = {"reads": report.reads, "stale": report.stale_reads, "seed": report.seed}
        if report.windows is not None:
            detail["windows"] = report.windows
        keys = self._redis_keys_during(report.history)
        measurement = Measurement("stale_reads", report.violation_count, keys, detail)
        self._context.measurements.append(measurement)
        return measurement

    def _redis_keys_during(self, history: Sequence[Operation]) -> tuple[str, ...]:
        """Redis keys the code under test touched while the history was made (for target patterns)."""
        if self._context is None or not history or not self._context.monitor.active:
            return ()
        first = min(op.start_ns for op in history)
        last = max(op.end_ns for op in history)
        touched: dict[str, None] = {}
        for event in self._context.monitor.events:
            if first <= event.start_ns <= last:
                touched.update(dict.fromkeys(event.keys))
        return tuple(touched)


# ---------------------------------------------------------------- counterexample timelines


def _with_commands(violation: Violation, trace: list[TraceEntry]) -> Violation:
    """Add the Redis commands each operation of the violation's window issued itself."""
    operations = violation.window or tuple(violation.essential())
    if not operations:
        return violation
    commands = [
        TracedCommand(process, start, stop, command_text(args, reply))
        for process, start, stop, args, reply in commands_of(operations, trace, _TIMELINE_COMMANDS)
    ]
    return replace(violation, commands=tuple(commands))


def command_text(args: tuple[Any, ...], reply: Any) -> str:
    """``GET q:5f0e... -> miss``: the name, its keys (or first arguments) and a value, each on one line."""
    name, keys, outcomes = classify(args, reply)
    shown = [_one_line(key) for key in keys] if keys else [_one_line(arg) for arg in args[1:4]]
    if keys and name in _VALUE_AFTER_KEY and len(args) > 2:
        shown.append(_one_line(args[2]))
    extra = " ..." if len(args) > 1 + len(shown) else ""
    return f"{name} {' '.join(shown)}{extra} -> {'/'.join(dict.fromkeys(outcomes))}"


_VALUE_AFTER_KEY = frozenset({"SET", "SETNX", "GETSET"})


def _one_line(value: Any, limit: int = 36) -> str:
    """Text with newlines, NULs and undecodable bytes escaped (pickled values stay on one line), cut to ``limit``."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, (bytes, bytearray)) else str(value)
    text = repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."
