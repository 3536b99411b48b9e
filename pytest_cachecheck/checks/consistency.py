"""``cache_consistency``: drive or record a workload, check it for stale reads, and the marker.

Driver mode runs the application's own ``read(key)`` and ``write(key, value)`` from
several threads (or asyncio tasks), with unique values and writes serialised per key,
so the order of versions is known and the checker in ``history.py`` can judge every
read. Race amplification (``amplify=True``) hooks into the observation layer and
sleeps, with a seeded schedule, where cache races live: before a cache fill that
follows a miss, around reads, and after invalidations. After the run, a quiescent
pass compares what the cache serves with the source of truth.

Record mode is for workloads the test drives itself: ``with cache_consistency.write(k, v)``
and ``with cache_consistency.read(k) as r: r.value = ...`` record intervals; ``check()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from time import perf_counter_ns
from typing import Any

import pytest

from ..observe import instrument
from ..observe.commands import DELETE, HIT, MISS, classify
from .arguments import MarkerError, MarkerSpec, Param
from .base import FAILED, PASSED, Check, CheckResult, Measurement, TestContext
from .history import (
    READ,
    WRITE,
    ConsistencyReport,
    Divergence,
    Operation,
    TracedCommand,
    Violation,
    _canonical,
    check_history,
)

MARKER = "cache_no_stale_reads"
DATA_KEY = "consistency"
RECORDERS_KEY = "consistency_recorders"
PROGRESS_AFTER_S = 2.0


@dataclass(frozen=True)
class Amplification:
    """Where and how long the seeded delays are (probability, longest delay in ms)."""

    fill_probability: float = 0.5
    fill_max_ms: float = 2.0
    read_probability: float = 0.1
    read_max_ms: float = 0.5
    invalidate_probability: float = 0.5
    invalidate_max_ms: float = 2.0


class _Schedule:
    """One driver worker's delays: its own RNG, so a seed replays the same decisions per worker."""

    def __init__(self, name: str, seed: int, amplification: Amplification | None, is_async: bool) -> None:
        self.name = name
        self.rng = random.Random(f"{seed}/delays/{name}")
        self.amplification = amplification
        self.is_async = is_async
        self.missed = False
        self.sent_ns = 0

    def begin_operation(self) -> None:
        self.missed = False

    def delay_before(self, commands: list[tuple[Any, ...]]) -> float:
        """Seconds to sleep before sending ``commands`` (a fill after a miss, or a read)."""
        plan = self.amplification
        if plan is None:
            return 0.0
        is_read = all(classify(args, None)[2][0] in (HIT, MISS) for args in commands)
        if is_read:
            return self._draw(plan.read_probability, plan.read_max_ms)
        if self.missed:
            self.missed = False
            return self._draw(plan.fill_probability, plan.fill_max_ms)
        return 0.0

    def delay_after(self, outcomes: tuple[str, ...]) -> float:
        """Seconds to sleep after an invalidation (threads only: ``after`` cannot await)."""
        plan = self.amplification
        if plan is None or self.is_async or DELETE not in outcomes:
            return 0.0
        return self._draw(plan.invalidate_probability, plan.invalidate_max_ms)

    def _draw(self, probability: float, max_ms: float) -> float:
        if self.rng.random() >= probability:
            return 0.0
        return self.rng.uniform(0.0, max_ms) / 1000.0


_current: ContextVar[_Schedule | None] = ContextVar("pytest_cachecheck_consistency_worker", default=None)


class _Amplifier(instrument.Interceptor):
    """Seeded delays for driver workers (outside command timings), and a trace of their Redis commands."""

    def __init__(self) -> None:
        self.trace: list[tuple[str, int, int, tuple[Any, ...], Any]] = []

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        schedule = _current.get()
        if schedule is None:
            return
        delay = schedule.delay_before(commands)
        if delay:
            time.sleep(delay)
        schedule.sent_ns = perf_counter_ns()

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        schedule = _current.get()
        if schedule is None:
            return
        delay = schedule.delay_before(commands)
        if delay:
            await asyncio.sleep(delay)
        schedule.sent_ns = perf_counter_ns()

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        schedule = _current.get()
        if schedule is None:
            return
        self.trace.append((schedule.name, schedule.sent_ns, perf_counter_ns(), args, reply))
        outcomes = classify(args, reply)[2]
        if MISS in outcomes:
            schedule.missed = True
        delay = schedule.delay_after(outcomes)
        if delay:
            time.sleep(delay)


class _Progress:
    """``12000/20000 ops`` on the terminal, only for runs longer than a couple of seconds."""

    def __init__(self, total: int, show: Callable[[str], None] | None) -> None:
        self.total = total
        self.show = show
        self.done = itertools.count()
        self.count = 0
        self.started = time.monotonic()
        self.shown = False

    def advance(self) -> None:
        self.count = next(self.done) + 1

    def render(self) -> None:
        """Called from the driving thread only (terminal writes are not thread-safe)."""
        if self.show is None or time.monotonic() - self.started < PROGRESS_AFTER_S:
            return
        width = 30
        filled = width * self.count // max(self.total, 1)
        self.show(f"cache_consistency [{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} ops")
        self.shown = True

    def finish(self) -> None:
        if self.shown and self.show is not None:
            self.show("")


_UNSET: Any = object()


class ReadRecord:
    """Record mode: set ``.value`` to what the read returned, inside the ``with`` block."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.value = _UNSET


def _who() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task.get_name() if task is not None else threading.current_thread().name


async def _maybe_await(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"cache_consistency.run: {name} must be a whole number >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class _Plan:
    """A driver run's validated parameters."""

    keys: tuple[str, ...]
    workers: int
    ops: int
    read_ratio: float
    seed: int
    amplification: Amplification | None
    max_staleness_ms: float

    def ops_for(self, worker: int) -> int:
        return self.ops // self.workers + (1 if worker < self.ops % self.workers else 0)


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
        self._recorded: list[Operation] = []
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
    ) -> ConsistencyReport:
        """Run ``ops`` reads and writes from ``threads`` workers and check the history.

        ``async def`` callables run as ``threads`` asyncio tasks on a new event loop
        (inside a running loop, ``await run_async(...)`` instead). ``truth(key)`` reads
        the source of truth for the convergence check; without it the last acknowledged
        write is the truth.
        """
        if inspect.iscoroutinefunction(read) or inspect.iscoroutinefunction(write):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(
                    self.run_async(
                        read, write, keys, threads, ops, read_ratio, amplify, seed,
                        truth=truth, max_staleness_ms=max_staleness_ms,
                    )
                )  # fmt: skip
            raise RuntimeError(
                "cache_consistency.run: called inside a running event loop; use "
                "`await cache_consistency.run_async(...)` in async tests"
            )
        plan = self._plan(keys, threads, ops, read_ratio, amplify, seed, max_staleness_ms)
        history: list[Operation] = []
        for key in plan.keys:
            self._drive_write(write, key, history, "setup")
        amplifier = _Amplifier()
        progress = _Progress(plan.ops, self._progress)
        locks = {key: threading.Lock() for key in plan.keys}
        stop = threading.Event()
        errors: list[BaseException] = []

        def worker(index: int) -> None:
            schedule = _Schedule(f"thread-{index + 1}", plan.seed, plan.amplification, is_async=False)
            _current.set(schedule)
            choices = random.Random(f"{plan.seed}/ops/{index}")
            try:
                for _ in range(plan.ops_for(index)):
                    if stop.is_set():
                        return
                    key = choices.choice(plan.keys)
                    schedule.begin_operation()
                    if choices.random() < plan.read_ratio:
                        start = perf_counter_ns()
                        value = read(key)
                        history.append(Operation(key, READ, value, start, perf_counter_ns(), True, schedule.name))
                    else:
                        with locks[key]:
                            self._drive_write(write, key, history, schedule.name)
                    progress.advance()
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)
                stop.set()

        with instrument.intercepting(amplifier):
            workers = [
                threading.Thread(target=worker, args=(index,), name=f"cachecheck-consistency-{index + 1}", daemon=True)
                for index in range(plan.workers)
            ]
            for thread in workers:
                thread.start()
            while any(thread.is_alive() for thread in workers):
                next(thread for thread in workers if thread.is_alive()).join(0.2)
                progress.render()
        progress.finish()
        if errors:
            raise errors[0]
        divergences = []
        for key in plan.keys:
            read_start_ns, before = perf_counter_ns(), _log_length()
            served = read(key)
            expected = truth(key) if truth is not None else _UNSET
            divergences.append(
                self._converge(key, served, read_start_ns, _keys_read_since(before), expected, history, plan)
            )
        return self._finish(history, plan, amplifier, tuple(divergences))

    async def run_async(
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
    ) -> ConsistencyReport:
        """``run`` for ``async def`` callables: ``threads`` concurrent tasks on the running loop."""
        plan = self._plan(keys, threads, ops, read_ratio, amplify, seed, max_staleness_ms)
        history: list[Operation] = []
        for key in plan.keys:
            await self._drive_write_async(write, key, history, "setup")
        amplifier = _Amplifier()
        progress = _Progress(plan.ops, self._progress)
        locks = {key: asyncio.Lock() for key in plan.keys}

        async def worker(index: int) -> None:
            schedule = _Schedule(f"task-{index + 1}", plan.seed, plan.amplification, is_async=True)
            _current.set(schedule)
            choices = random.Random(f"{plan.seed}/ops/{index}")
            for _ in range(plan.ops_for(index)):
                key = choices.choice(plan.keys)
                schedule.begin_operation()
                if choices.random() < plan.read_ratio:
                    start = perf_counter_ns()
                    value = await _maybe_await(read(key))
                    history.append(Operation(key, READ, value, start, perf_counter_ns(), True, schedule.name))
                else:
                    async with locks[key]:
                        await self._drive_write_async(write, key, history, schedule.name)
                progress.advance()
                if progress.count % 64 == 0:
                    progress.render()

        with instrument.intercepting(amplifier):
            tasks = [asyncio.ensure_future(worker(index)) for index in range(plan.workers)]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
        progress.finish()
        divergences = []
        for key in plan.keys:
            read_start_ns, before = perf_counter_ns(), _log_length()
            served = await _maybe_await(read(key))
            expected = await _maybe_await(truth(key)) if truth is not None else _UNSET
            divergences.append(
                self._converge(key, served, read_start_ns, _keys_read_since(before), expected, history, plan)
            )
        return self._finish(history, plan, amplifier, tuple(divergences))

    def _plan(
        self,
        keys: int | Sequence[Any],
        threads: int,
        ops: int,
        read_ratio: float,
        amplify: bool | Amplification,
        seed: int | None,
        max_staleness_ms: float | None,
    ) -> _Plan:
        if isinstance(keys, int) and not isinstance(keys, bool):
            count = _positive_int("keys", keys)
            width = len(str(count - 1))
            names: tuple[Any, ...] = tuple(f"k{index:0{width}d}" for index in range(count))
        elif isinstance(keys, (list, tuple)) and keys and len(set(keys)) == len(keys):
            names = tuple(keys)
        else:
            raise ValueError(
                f"cache_consistency.run: keys must be a count >= 1 or a list of distinct keys, got {keys!r}"
            )
        if not isinstance(read_ratio, (int, float)) or not 0 <= read_ratio <= 1:
            raise ValueError(f"cache_consistency.run: read_ratio must be a number from 0 to 1, got {read_ratio!r}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"cache_consistency.run: seed must be a whole number or None, got {seed!r}")
        if isinstance(amplify, Amplification):
            amplification: Amplification | None = amplify
        elif isinstance(amplify, bool):
            amplification = Amplification() if amplify else None
        else:
            raise ValueError(f"cache_consistency.run: amplify must be True, False or an Amplification, got {amplify!r}")
        return _Plan(
            keys=names,
            workers=_positive_int("threads", threads),
            ops=_positive_int("ops", ops),
            read_ratio=float(read_ratio),
            seed=seed if seed is not None else random.SystemRandom().randrange(1, 2**31),
            amplification=amplification,
            max_staleness_ms=self._bound(max_staleness_ms),
        )

    def _bound(self, max_staleness_ms: float | None) -> float:
        if max_staleness_ms is None:
            return self._default_bound
        if not isinstance(max_staleness_ms, (int, float)) or max_staleness_ms < 0:
            raise ValueError(f"cache_consistency: max_staleness_ms must be a number >= 0, got {max_staleness_ms!r}")
        return float(max_staleness_ms)

    def _next_value(self, key: Any) -> str:
        counter = self._versions.setdefault(key, itertools.count(1))
        return f"{key}#{next(counter)}"

    def _drive_write(self, write: Callable[[Any, Any], Any], key: Any, history: list[Operation], who: str) -> None:
        value = self._next_value(key)
        start = perf_counter_ns()
        try:
            write(key, value)
        except BaseException:
            history.append(Operation(key, WRITE, value, start, perf_counter_ns(), False, who))
            raise
        history.append(Operation(key, WRITE, value, start, perf_counter_ns(), True, who))

    async def _drive_write_async(
        self, write: Callable[[Any, Any], Any], key: Any, history: list[Operation], who: str
    ) -> None:
        value = self._next_value(key)
        start = perf_counter_ns()
        try:
            await _maybe_await(write(key, value))
        except BaseException:
            history.append(Operation(key, WRITE, value, start, perf_counter_ns(), False, who))
            raise
        history.append(Operation(key, WRITE, value, start, perf_counter_ns(), True, who))

    def _converge(
        self,
        key: Any,
        served: Any,
        read_start_ns: int,
        touched: tuple[str, ...],
        expected: Any,
        history: list[Operation],
        plan: _Plan,
    ) -> Divergence | None:
        """After quiescence: does the cache serve the truth? If not, for how much longer (TTL)?

        ``expected`` is what ``truth(key)`` returned, or unset: then the last acknowledged write.
        """
        last = next((op for op in reversed(history) if op.key == key and op.kind == WRITE and op.ok), None)
        if expected is _UNSET:
            expected = last.value if last is not None else None
        if _canonical(served) == _canonical(expected):
            return None
        ttl_ms, probed_ns = self._remaining_ttls(touched)
        divergence = Divergence(
            key=str(key),
            served=served,
            truth=expected,
            age_ms=(read_start_ns - last.end_ns) / 1e6 if last is not None else None,
            ttl_ms=ttl_ms,
            probe_age_ms=(probed_ns - last.end_ns) / 1e6 if last is not None else None,
            violation=True,
        )
        return replace(divergence, violation=divergence.beyond(plan.max_staleness_ms))

    def _remaining_ttls(self, keys: Sequence[str]) -> tuple[dict[str, int], int]:
        """Each key's PTTL, and the clock just before asking.

        The server answered after that instant, so "asked at + TTL" is a lower bound on the
        expiry: a pause on our side can make the verdict lenient, never falsely strict.
        """
        if not keys or self._client_factory is None:
            return {}, perf_counter_ns()
        client = self._client_factory()
        try:
            with instrument.unobserved():
                asked_ns = perf_counter_ns()
                return {name: int(client.pttl(name)) for name in keys}, asked_ns
        finally:
            client.close()

    def _finish(
        self,
        history: list[Operation],
        plan: _Plan,
        amplifier: _Amplifier,
        divergences: tuple[Divergence | None, ...],
    ) -> ConsistencyReport:
        report = check_history(history, max_staleness_ms=plan.max_staleness_ms)
        report = replace(
            report,
            divergences=tuple(divergence for divergence in divergences if divergence is not None),
            seed=plan.seed,
            amplified=plan.amplification is not None and instrument.state.log is not None,
            violations=tuple(_with_commands(violation, amplifier.trace) for violation in report.violations),
        )
        self._register(report)
        return report

    # ------------------------------------------------------------ record mode

    @contextlib.contextmanager
    def write(self, key: Any, value: Any) -> Iterator[None]:
        """Record the write of ``value`` to ``key`` that the block performs (its interval)."""
        start = perf_counter_ns()
        try:
            yield
        except BaseException:
            self._recorded.append(Operation(key, WRITE, value, start, perf_counter_ns(), False, _who()))
            raise
        self._recorded.append(Operation(key, WRITE, value, start, perf_counter_ns(), True, _who()))

    @contextlib.contextmanager
    def read(self, key: Any) -> Iterator[ReadRecord]:
        """Record the read the block performs; set ``.value`` on the yielded record to its result."""
        record = ReadRecord(key)
        start = perf_counter_ns()
        yield record
        end = perf_counter_ns()
        if record.value is _UNSET:
            raise ValueError(
                f"cache_consistency.read({key!r}): set .value on the record to what the read returned "
                "(with cache_consistency.read(key) as r: r.value = my_read(key))"
            )
        self._recorded.append(Operation(key, READ, record.value, start, end, True, _who()))

    def check(self, max_staleness_ms: float | None = None) -> ConsistencyReport:
        """Check everything recorded so far; the report replaces this fixture's previous one."""
        report = check_history(list(self._recorded), max_staleness_ms=self._bound(max_staleness_ms))
        if self._recorded_entry is not None and self._context is not None:
            previous_report, previous_measurement = self._recorded_entry
            data, measurements = self._context.data, self._context.measurements
            data[DATA_KEY] = [item for item in data[DATA_KEY] if item is not previous_report]
            measurements[:] = [item for item in measurements if item is not previous_measurement]
        self._checked_upto = len(self._recorded)
        self._recorded_entry = (report, self._register(report))
        return report

    def flush(self) -> None:
        """Check what record mode collected since the last ``check()`` (the marker calls this)."""
        if len(self._recorded) > self._checked_upto:
            self.check()

    # ------------------------------------------------------------ registration

    def _register(self, report: ConsistencyReport) -> Measurement | None:
        """Into the test's context: the report for the marker, a measurement for run-wide targets."""
        self.reports.append(report)
        if self._context is None:
            return None
        self._context.data[DATA_KEY].append(report)
        measurement = Measurement(
            "stale_reads",
            report.violation_count,
            self._redis_keys_during(report.history),
            detail={"reads": report.reads, "stale": report.stale_reads, "seed": report.seed},
        )
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


def _log_length() -> int | None:
    log = instrument.state.log
    return len(log) if log is not None else None


def _keys_read_since(before: int | None) -> tuple[str, ...]:
    """The Redis keys read by observed commands since the log had ``before`` records."""
    log = instrument.state.log
    if log is None or before is None:
        return ()
    touched: dict[str, None] = {}
    for _, _, args, reply, _ in log[before:]:
        _, keys, outcomes = classify(args, reply)
        for name, outcome in zip(keys, outcomes):
            if outcome in (HIT, MISS):
                touched[name] = None
    return tuple(touched)


def _with_commands(violation: Violation, trace: list[tuple[str, int, int, tuple[Any, ...], Any]]) -> Violation:
    """Add the Redis commands on the violation's key, inside its window, to its timeline."""
    if not violation.window:
        return violation
    begin = min(op.start_ns for op in violation.window)
    end = max(op.end_ns for op in violation.window)
    processes = {op.process for op in violation.window}
    commands = []
    for process, start, stop, args, reply in trace:
        if stop < begin or start > end or process not in processes:
            continue
        name, keys, outcomes = classify(args, reply)
        if not any(violation.key in key for key in keys):
            continue
        commands.append(TracedCommand(process, start, stop, _command_text(name, keys, outcomes, args)))
    return replace(violation, commands=tuple(commands[:16]))


def _command_text(name: str, keys: tuple[str, ...], outcomes: tuple[str, ...], args: tuple[Any, ...]) -> str:
    shown = " ".join(_short(arg) for arg in args[1:4])
    return f"{name} {shown}{' ...' if len(args) > 4 else ''} -> {'/'.join(dict.fromkeys(outcomes))}"


def _short(value: Any) -> str:
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= 30 else text[:27] + "..."


# ------------------------------------------------------------ the marker

SPEC = MarkerSpec(
    name=MARKER,
    params=(Param("max_staleness_ms", "number", default=0, low=0),),
    help="no read in this test's cache_consistency histories may return a value older than a write "
    "acknowledged more than max_staleness_ms before the read began",
)


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    bound = float(params["max_staleness_ms"])
    for recorder in list(context.data.get(RECORDERS_KEY, ())):
        recorder.flush()
    reports = [report.rechecked(bound) for report in context.data.get(DATA_KEY, ())]
    if not reports:
        return CheckResult(
            MARKER,
            FAILED,
            f"{MARKER}: no history was recorded; drive the cache with cache_consistency.run(read=..., write=...) "
            "or record calls with cache_consistency.read(key) / cache_consistency.write(key, value)",
        )
    reads = sum(report.reads for report in reports)
    stale = sum(report.stale_reads for report in reports)
    metrics = {
        "reads": reads,
        "stale_reads": stale,
        "phantom_reads": sum(report.phantom_reads for report in reports),
        "future_reads": sum(report.future_reads for report in reports),
        "nines": math.inf if stale == 0 else -math.log10(stale / reads),
        "worst_staleness_ms": max(report.worst_staleness_ms for report in reports),
        "p99_staleness_ms": max(report.p99_staleness_ms for report in reports),
        "max_staleness_ms": bound,
    }
    if reads == 0:
        return CheckResult(MARKER, FAILED, f"{MARKER}: the recorded history has no reads to check", metrics)
    failing = [report for report in reports if not report.ok]
    if not failing:
        return CheckResult(MARKER, PASSED, f"no stale reads in {reads} reads", metrics)
    return CheckResult(MARKER, FAILED, f"{MARKER}: " + "\n".join(report.format() for report in failing), metrics)


CHECK = Check(SPEC, evaluate, needs_monitor=False)


def terminal_progress(config: pytest.Config) -> Callable[[str], None] | None:
    """A status line on the real terminal (past output capture), or None when not a TTY.

    Decided by the terminal writer's stream, not by colour: ``--color=yes`` into a pipe
    would fill a log with carriage-return lines, and ``NO_COLOR`` on a TTY only asks
    for no colour.
    """
    writer = config.get_terminal_writer()
    capture = config.pluginmanager.getplugin("capturemanager")
    if not writer._file.isatty() or capture is None:  # pytest has no public accessor for the stream
        return None
    width = max(20, writer.fullwidth - 1)

    def show(text: str) -> None:
        with capture.global_and_fixture_disabled():
            writer.write("\r" + text[:width].ljust(width) + ("" if text else "\r"), flush=True)

    return show


def marker_bound(node: pytest.Item) -> float:
    """The test's ``cache_no_stale_reads(max_staleness_ms=...)``, the driver's default bound."""
    mark = node.get_closest_marker(MARKER)
    if mark is None:
        return 0.0
    try:
        return float(SPEC.bind(mark.args, mark.kwargs)["max_staleness_ms"])
    except MarkerError:
        return 0.0  # fixtures are set up before markers are validated: the test fails with that line
