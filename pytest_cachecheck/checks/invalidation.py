"""Invalidation: how soon a write becomes visible, and whether invalidating costs O(1).

``cache_invalidation.measure(write, read, expect)`` times write start -> end of the first
read that returns ``expect`` (the visibility latency) and records what the write sent
to Redis. ``cache_invalidation.scaling(populate, invalidate, sizes)`` fills the cache to
each size and records, per size, the commands and keys ``invalidate`` touched (exact,
deterministic) and its time (median of interleaved repetitions), then fits the log-log
slope of time against size. The marker ``cache_invalidation(max_ms, *, o1=False)``
judges both. A KEYS or SCAN based invalidation touches more keys or sends more
commands as the cache grows, which the command counts show without any timing noise.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from ..interception import Interceptor, intercepting
from ..observe.commands import classify
from ..observe.instrument import state
from ..observe.patterns import shown_value
from ..observe.server_stats import ServerCounters, ServerStats, ServerStatsProbe, difference
from . import latency
from .arguments import MarkerSpec, Param, is_whole_number, require_number, require_whole
from .base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, Measurement, TestContext
from .baseline import Baseline, explained
from .bounds import loglog_slope
from .drive import Call, Procedure, Sleep, drive, is_async

O1_MAX_SLOPE = 0.25
DEFAULT_SIZES = (100, 1_000, 10_000, 100_000)
_POLL_SPIN_NS = 1_000_000  # poll without pausing for the first millisecond
_POLL_MAX_PAUSE_S = 0.001  # then pause 5% of the elapsed time, at most 1 ms: error <= 5% or 1 ms
DATA_MEASURE = "invalidation"
DATA_SCALING = "invalidation_scaling"
SCALING_METRIC = "invalidation_scaling_ms"  # plotted per cache size in reports; no target reads it
PLOT_KEYS = 100


class CommandRecorder(Interceptor):
    """Interceptor that collects what every observed command did during a span, from any thread."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        self.busy_ns = 0
        self._local = threading.local()

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        self._local.start = perf_counter_ns()
        self._local.pending = len(commands)

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        self.before(commands)

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        self.commands.append(classify(args, reply))
        pending = getattr(self._local, "pending", 1) - 1
        self._local.pending = pending
        if pending == 0:
            self.busy_ns += perf_counter_ns() - getattr(self._local, "start", perf_counter_ns())

    def names(self) -> Counter[str]:
        return Counter(command for command, _, _ in self.commands)

    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for _, keys, _ in self.commands for key in keys))


def _observing() -> bool:
    return state.log is not None


@dataclass(frozen=True)
class Visibility:
    """One ``measure()``: visibility latency and what the write sent to Redis."""

    visible: bool
    latency_ms: float  # write start -> end of the first fresh read (when not visible: time waited)
    write_ms: float
    reads: int
    last_value: Any
    commands: Counter[str] | None  # client-side commands the write issued (None: not observed)
    keys: tuple[str, ...]
    client_ms: float
    server: ServerStats | None = None  # server-side during the write alone

    def describe(self) -> str:
        if self.commands is None:
            sent = "commands not observed (--cache-no-monitor)"
        else:
            names = ", ".join(f"{name} {count}" for name, count in self.commands.most_common(4)) or "none"
            sent = (
                f"the write sent {sum(self.commands.values())} commands ({names}) touching {len(self.keys)} keys "
                f"in {self.client_ms:.3f} ms"
            )
        server = f"; {self.server.describe()} (during the write)" if self.server is not None else ""
        return f"{sent}{server}"


@dataclass(frozen=True)
class ScalingRow:
    size: int
    commands: int | None  # client-side commands invalidate() sent (most over repetitions)
    keys: int | None  # distinct keys it touched
    names: Counter[str]
    server_calls: int | None  # server-side calls, Lua included (real-server backends and fake)
    times_ms: tuple[float, ...]
    server_keys: int | None = None  # keys the server-side commands named or listed, Lua included (fake)

    @property
    def median_ms(self) -> float:
        ordered = sorted(self.times_ms)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    @property
    def fastest_ms(self) -> float:
        """The repetition least disturbed by the machine: noise only ever adds time."""
        return min(self.times_ms)

    def describe(self) -> str:
        if self.commands is None:
            sent = "commands not observed"
        else:
            names = ", ".join(f"{name} {count}" for name, count in self.names.most_common(3))
            sent = f"{self.commands} commands ({names}), {self.keys} keys"
        server = f", {self.server_calls} server-side calls" if self.server_calls is not None else ""
        if self.server_keys is not None:
            server += f" touching {self.server_keys} keys"
        return f"{self.size}: {sent}{server}, {self.median_ms:.3f} ms"


@dataclass(frozen=True)
class Scaling:
    """Invalidation cost per cache size and the log-log slope of its (fastest) time."""

    rows: tuple[ScalingRow, ...]
    slope: float
    problems: tuple[str, ...] = field(default=())

    @property
    def is_o1(self) -> bool:
        return not self.problems

    def table(self) -> str:
        return "; ".join(row.describe() for row in self.rows)


def o1_problems(rows: Sequence[ScalingRow], slope: float) -> tuple[str, ...]:
    """Why the rows do not show O(1) invalidation (empty when they do)."""
    problems = []
    for label, values in (
        ("client-side commands", [row.commands for row in rows]),
        ("keys touched", [row.keys for row in rows]),
        ("server-side calls", [row.server_calls for row in rows]),
        ("keys touched server-side", [row.server_keys for row in rows]),
    ):
        known = [value for value in values if value is not None]
        if len(known) == len(values) and len(set(known)) > 1:
            problems.append(f"{label} grow with the cache ({' -> '.join(str(value) for value in known)})")
    if slope >= O1_MAX_SLOPE:
        problems.append(f"time slope {slope:.2f} on log-log axes (O(1) needs < {O1_MAX_SLOPE})")
    return tuple(problems)


def slope_within_noise(scaling: Scaling, baseline: Baseline) -> str | None:
    """Why a slope-only miss is no evidence (None when it is): every count stayed constant, and the
    fastest time grew across the sizes by no more than one round trip of this machine can stall
    (its own p99 over the same seconds). Then the tilt can be the machine's, not the code's: a
    loaded runner that is slower right after the largest ``populate()`` tilts the slope of a
    single ``INCRBY``. A real O(N) invalidation whose counts hide it (a server-side loop counted
    as one call) adds time in proportion to the keys, and fails once that exceeds the machine's
    noise. Without probes there is no measure of the noise, and the miss stands."""
    noise = baseline.value("p99_ms")
    fastest = [row.fastest_ms for row in scaling.rows]
    growth = max(fastest) - min(fastest)
    if noise is None or growth > noise:
        return None
    return (
        f"but commands and keys stayed constant and the fastest time grew by only {growth:.3f} ms across the "
        f"sizes, within {baseline.describe('p99_ms')} (rerun on a quieter machine, or use larger sizes)"
    )


class InvalidationProbe:
    """The ``cache_invalidation`` fixture."""

    def __init__(self, context: TestContext, server_stats: ServerStatsProbe | None = None) -> None:
        self._context = context
        self._server_stats = server_stats

    # ------------------------------------------------------------ measure
    def measure(self, write: Callable[[], Any], read: Callable[[], Any], expect: Any, timeout_ms: float = 1000) -> Any:
        """Perform ``write``, then ``read`` until it returns ``expect``; returns a ``Visibility``.

        With ``async def`` callables it returns a coroutine: ``await cache_invalidation.measure(...)``.
        """
        if not callable(write) or not callable(read):
            raise TypeError("cache_invalidation.measure: 'write' and 'read' must be callables taking no arguments")
        require_number("cache_invalidation.measure", "timeout_ms", timeout_ms, low=0, low_open=True)
        procedure = self._measure(write, read, expect, timeout_ms)
        return drive(procedure, is_async(write, read), "cache_invalidation.measure")

    def _measure(
        self, write: Callable[[], Any], read: Callable[[], Any], expect: Any, timeout_ms: float
    ) -> Procedure[Visibility]:
        before = self._server_stats.counters() if self._server_stats is not None else None
        recorder = CommandRecorder()
        observing = _observing()
        with intercepting(recorder):
            start = perf_counter_ns()
            yield Call(write)
            write_end = perf_counter_ns()
        server, snapshot_ns = self._server_delta(before)
        # The INFO round trip after the write is ours: the first read comes that much later, so a
        # value that became visible meanwhile is charged from the write's start minus that time.
        # A read that still saw the old value came after it, so from then on the clock the
        # application's invalidation runs on (a delayed delete, replication) is the wall clock.
        # Never visible: the time waited, on the same clock as timeout_ms (without it).
        deadline = start + snapshot_ns + int(timeout_ms * 1e6)
        reads, value, now = 0, None, write_end
        while True:
            value = yield Call(read)
            reads += 1
            now = perf_counter_ns()
            if value == expect or now >= deadline:
                break
            elapsed = now - start
            if elapsed > _POLL_SPIN_NS:
                yield Sleep(min(elapsed * 0.05 / 1e9, _POLL_MAX_PAUSE_S))
        result = Visibility(
            visible=value == expect,
            latency_ms=(now - start - (snapshot_ns if reads == 1 or value != expect else 0)) / 1e6,
            write_ms=(write_end - start) / 1e6,
            reads=reads,
            last_value=value,
            commands=recorder.names() if observing else None,
            keys=recorder.keys(),
            client_ms=recorder.busy_ns / 1e6,
            server=server,
        )
        self._context.data[DATA_MEASURE].append(result)
        self._context.measurements.append(
            Measurement("invalidation_ms", result.latency_ms, result.keys, {"visible": result.visible})
        )
        return result

    def _server_delta(self, before: ServerCounters | None) -> tuple[ServerStats | None, int]:
        """Server-side counters since ``before``, and how long asking for them took (ns)."""
        if before is None or self._server_stats is None:
            return None, 0
        asked = perf_counter_ns()
        after = self._server_stats.counters()
        return (difference(before, after) if after is not None else None), perf_counter_ns() - asked

    # ------------------------------------------------------------ scaling
    def scaling(
        self,
        populate: Callable[[int], Any],
        invalidate: Callable[[], Any],
        sizes: Sequence[int] = DEFAULT_SIZES,
        repeats: int = 5,
    ) -> Any:
        """At each size: ``populate(size)`` (excluded from assertions), then time ``invalidate()``.

        Sizes are visited in alternating order on each repetition, so drift (a warming
        machine, a growing database) does not tilt the slope. Returns a ``Scaling``; with
        ``async def`` callables, a coroutine.
        """
        if not callable(populate) or not callable(invalidate):
            raise TypeError(
                "cache_invalidation.scaling: 'populate' (fn(size)) and 'invalidate' (fn()) must be callables"
            )
        checked = tuple(sizes)
        if len(set(checked)) < 2 or not all(is_whole_number(size, 1) for size in checked):
            raise ValueError(
                "cache_invalidation.scaling: 'sizes' must hold at least two different whole numbers >= 1, "
                f"got {sizes!r}"
            )
        require_whole("cache_invalidation.scaling", "repeats", repeats, low=1)
        procedure = self._scaling(populate, invalidate, tuple(sorted(set(checked))), repeats)
        return drive(procedure, is_async(populate, invalidate), "cache_invalidation.scaling")

    def _scaling(
        self, populate: Callable[[int], Any], invalidate: Callable[[], Any], sizes: tuple[int, ...], repeats: int
    ) -> Procedure[Scaling]:
        times: dict[int, list[float]] = {size: [] for size in sizes}
        counts: dict[int, list[tuple[int, int, Counter[str]]]] = {size: [] for size in sizes}
        server_calls: dict[int, list[int]] = {size: [] for size in sizes}
        server_keys: dict[int, list[int]] = {size: [] for size in sizes}
        touched: dict[int, tuple[str, ...]] = {}
        observing = _observing()
        for repetition in range(repeats):
            for size in sizes if repetition % 2 == 0 else reversed(sizes):
                with self._context.monitor.warmup():
                    yield Call(populate, (size,))
                before = self._server_stats.counters() if self._server_stats is not None else None
                recorder = CommandRecorder()
                with intercepting(recorder):
                    start = perf_counter_ns()
                    yield Call(invalidate)
                    elapsed = perf_counter_ns() - start
                times[size].append(elapsed / 1e6)
                keys = recorder.keys()
                counts[size].append((len(recorder.commands), len(keys), recorder.names()))
                touched.setdefault(size, keys)
                after = self._server_stats.counters() if before is not None and self._server_stats else None
                if before is not None and after is not None:
                    delta = difference(before, after)
                    server_calls[size].append(delta.total_calls)
                    if delta.keys_touched is not None:
                        server_keys[size].append(delta.keys_touched)
        rows = tuple(
            ScalingRow(
                size=size,
                commands=max(count for count, _, _ in counts[size]) if observing else None,
                keys=max(keys for _, keys, _ in counts[size]) if observing else None,
                names=max(counts[size], key=lambda entry: entry[0])[2],
                server_calls=max(server_calls[size]) if len(server_calls[size]) == repeats else None,
                times_ms=tuple(times[size]),
                server_keys=max(server_keys[size]) if len(server_keys[size]) == repeats else None,
            )
            for size in sizes
        )
        slope = loglog_slope([row.size for row in rows], [row.fastest_ms for row in rows])
        result = Scaling(rows, slope, o1_problems(rows, slope))
        self._context.data[DATA_SCALING].append(result)
        keys = touched[sizes[0]][:PLOT_KEYS]  # enough to match target patterns, cheap at 100k keys
        self._context.measurements.extend(
            Measurement(SCALING_METRIC, row.median_ms, keys, {"size": row.size}) for row in rows
        )
        return result


# ---------------------------------------------------------------- marker


def _something_to_check(bound: dict[str, Any]) -> str | None:
    if bound["max_ms"] is None and bound["mean_ms"] is None and not bound["o1"]:
        return (
            "give max_ms (a ceiling on visibility latency), mean_ms (on their mean) and/or o1=True, "
            "e.g. cache_invalidation(10, o1=True)"
        )
    return None


SPEC = MarkerSpec(
    name="cache_invalidation",
    params=(
        Param("max_ms", "number", positional=True, default=None, low=0, low_open=True),
        Param("mean_ms", "number", default=None, low=0, low_open=True),
        Param("o1", "bool", default=False),
    ),
    help="every visibility latency measured with cache_invalidation.measure() is <= max_ms (in a test that only "
    "ran scaling(): every timed invalidation); mean_ms: their mean, failing only on clear evidence; "
    "o1=True: cache_invalidation.scaling() shows constant commands and keys and a time slope < 0.25",
    extra_check=_something_to_check,
)


def _timed(results: Sequence[Visibility], scalings: Sequence[Scaling]) -> tuple[list[float], str]:
    """What the time ceilings bound: the visibility latencies, or, in a test that only ran ``scaling()``,
    every timed invalidation of it; and what they are called in messages."""
    if results:
        return [result.latency_ms for result in results], "visibility latency"
    return [time for scaling in scalings for row in scaling.rows for time in row.times_ms], "timed invalidation"


def _round_trips(results: Sequence[Visibility], scalings: Sequence[Scaling]) -> int:
    """The round trips inside the timed measurements (the write's commands and every read, or each
    timed ``invalidate()``'s commands): a stall of the machine in any of them lengthens a measurement,
    so the baseline rule reads the maximum of the measurements as the maximum of this many round trips."""
    if results:
        return sum((sum(result.commands.values()) if result.commands else 1) + result.reads for result in results)
    return sum((row.commands or 1) * len(row.times_ms) for scaling in scalings for row in scaling.rows)


def _check_latency(
    results: Sequence[Visibility], scalings: Sequence[Scaling], max_ms: float, baseline: Baseline
) -> tuple[str, str | None]:
    """``(status, problem)`` of the ``max_ms`` ceiling."""
    if not results and not scalings:
        return FAILED, (
            f"max_ms={max_ms:g} needs a visibility latency, but neither cache_invalidation.measure(write, read, "
            "expect) nor cache_invalidation.scaling(populate, invalidate) was called in this test"
        )
    unseen = [result for result in results if not result.visible]
    if unseen:
        first = unseen[0]
        return FAILED, (
            f"{len(unseen)} of {len(results)} writes never became visible: after {first.latency_ms:.1f} ms and "
            f"{first.reads} reads the cache still returned {shown_value(first.last_value, 80, as_text=False)}; "
            f"{first.describe()}"
        )
    times, name = _timed(results, scalings)
    worst_ms = max(times)
    if worst_ms <= max_ms:
        return PASSED, None
    over = sum(time > max_ms for time in times)
    if results:
        worst = max(results, key=lambda result: result.latency_ms)
        detail = f"write took {worst.write_ms:.3f} ms, {worst.reads} reads until fresh); {worst.describe()}"
    else:
        slowest = max((row for scaling in scalings for row in scaling.rows), key=lambda row: max(row.times_ms))
        detail = f"slowest at cache size {slowest.size}: {slowest.describe()})"
    problem = f"{name} {worst_ms:.3f} ms is above max_ms={max_ms:g} ({over} of {len(times)} measurements over; {detail}"
    round_trips = max(len(times), _round_trips(results, scalings))
    if baseline.over("max_ms", max_ms, round_trips):
        return INCONCLUSIVE, f"{problem}; {explained('max_ms', max_ms, baseline, round_trips)}"
    return FAILED, f"{problem}; {baseline.unexplained('max_ms', max_ms, round_trips)}"


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    max_ms, mean_ms, o1 = params["max_ms"], params["mean_ms"], params["o1"]
    results: list[Visibility] = context.data.get(DATA_MEASURE) or []
    scalings: list[Scaling] = context.data.get(DATA_SCALING) or []
    baseline = Baseline.of([duration / 1e6 for _, duration in context.monitor.baseline])
    metrics: dict[str, Any] = {}
    if results:
        metrics["invalidation_ms"] = max(result.latency_ms for result in results)
    problems, unsure, passes = [], [], []
    timing_only = True  # every problem found is a measured time over its limit (not a count, not a missing call)
    if max_ms is not None:
        status, problem = _check_latency(results, scalings, max_ms, baseline)
        if status == FAILED and problem:
            problems.append(problem)
            timing_only = bool(results or scalings) and all(result.visible for result in results)
        elif status == INCONCLUSIVE and problem:
            unsure.append(problem)
        else:
            count, name = len(_timed(results, scalings)[0]), _timed(results, scalings)[1]
            passes.append(f"{count} {name}s <= {max_ms:g} ms ({baseline.describe('max_ms')})")
    if mean_ms is not None:
        times, name = _timed(results, scalings)
        if not times:
            problems.append(
                f"mean_ms={mean_ms:g} needs visibility latencies: call cache_invalidation.measure(write, read, expect) "
                "(or scaling()) in the test"
            )
            timing_only = False
        else:
            status, part = latency.judge("mean_ms", mean_ms, sorted(times), baseline)
            metrics["invalidation_mean_ms"] = sum(times) / len(times)
            part = f"{name} {part}"
            {FAILED: problems, INCONCLUSIVE: unsure, PASSED: passes}[status].append(part)
    if o1:
        if not scalings:
            problems.append("o1=True needs cache_invalidation.scaling(populate, invalidate, sizes) in the test")
            timing_only = False
        for scaling in scalings:
            metrics["slope"] = scaling.slope
            if scaling.is_o1:
                continue
            only_slope = scaling.slope >= O1_MAX_SLOPE and len(scaling.problems) == 1
            within = slope_within_noise(scaling, baseline) if only_slope else None
            if within is not None:
                unsure.append(f"O(1) not shown: {scaling.problems[0]}, {within}; per size: {scaling.table()}")
                continue
            problems.append(f"not O(1): {'; '.join(scaling.problems)}; per size: {scaling.table()}")
            timing_only = timing_only and only_slope
    if problems:
        return CheckResult(SPEC.name, FAILED, "cache_invalidation: " + "; ".join(problems), metrics, timing=timing_only)
    if unsure:
        return CheckResult(SPEC.name, INCONCLUSIVE, "cache_invalidation inconclusive: " + "; ".join(unsure), metrics)
    if o1:
        passes.append(f"O(1): slope {scalings[-1].slope:.2f}, per size: {scalings[-1].table()}")
    return CheckResult(SPEC.name, PASSED, "cache_invalidation: " + "; ".join(passes), metrics)


CHECK = Check(SPEC, evaluate)
