"""``cache_bench``: cold-vs-warm speedup with a confidence interval, and concurrent load runs.

``speedup(call, cold, rounds=21)`` alternates cold and warm calls (cold, warm, cold,
warm ...) so that machine noise hits both alike, and takes one cold/warm ratio per
round. The median ratio's 99% confidence interval comes from the sign test (order
statistics of the ratios), which holds whatever the timing distribution. The marker
``cache_speedup(min)`` fails only when the interval's upper end is below ``min``.

``load(call, concurrency=30, requests=3000)`` runs ``call`` from ``concurrency`` threads
(tasks for ``async def``) and reports request latency percentiles and the hit rate of
the reads made meanwhile: "30 concurrent users, p99 <= 10 ms, hit rate >= 90%". With
``source=`` (the callable the application loads from on a miss, ``checks/origin.py``) it
also counts the source's loads: "database load: 8.8% of requests".

``stampede(call, cold, concurrency=20, rounds=3, source=None)`` lives in ``checks/stampede.py``.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from ..observe.aggregate import compute_stats, percentile
from ..observe.events import Event
from ..text import plural
from .arguments import MarkerSpec, Param, require_whole
from .base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, Measurement, TestContext
from .bounds import MedianInterval, QuantileBounds, median_interval, quantile_bounds
from .cost import measure_cost
from .drive import Call, Procedure, drive, handed_out, is_async
from .origin import SourceCounter, counting, where_found
from .stampede import StampedeRun

CONFIDENCE = 0.99
DATA_SPEEDUP = "speedup"
DATA_LOAD = "load"


@dataclass(frozen=True)
class Speedup:
    """Median cold/warm ratio over paired rounds, with its confidence interval."""

    interval: MedianInterval
    cold_ms: float  # medians
    warm_ms: float
    ratios: tuple[float, ...]
    warm_hits: int | None  # reads the warm calls made (None: not observed)
    warm_misses: int | None

    @property
    def ratio(self) -> float:
        return self.interval.median

    @property
    def low(self) -> float | None:
        return self.interval.low

    @property
    def high(self) -> float | None:
        return self.interval.high

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            spread = f"{self.interval.confidence:.0%} CI {self.low:.2f}x-{self.high:.2f}x"
        else:
            spread = f"no {self.interval.confidence:.0%} CI with {len(self.ratios)} rounds (needs >= 8)"
        warm = (
            f", warm calls read {plural(self.warm_hits, 'hit')} / {plural(self.warm_misses or 0, 'miss', 'misses')}"
            if self.warm_hits is not None
            else ""
        )
        return (
            f"speedup {self.ratio:.2f}x ({spread}) over {len(self.ratios)} rounds: "
            f"cold {self.cold_ms:.3f} ms, warm {self.warm_ms:.3f} ms{warm}"
        )


@dataclass(frozen=True)
class LoadRun:
    """Request latencies of one load run (exact order statistics, no bucketing) and its hit rate."""

    requests: int
    concurrency: int
    errors: int
    first_error: str | None
    duration_s: float
    latencies_ms: tuple[float, ...]  # sorted
    hits: int | None
    misses: int | None
    source_loads: int | None = None  # calls of ``source=`` during the run (None: no source named)

    @property
    def source_loads_per_request(self) -> float | None:
        """Source loads per completed or failed request: the share of requests the cache did not spare the source."""
        if self.source_loads is None or not self.requests:
            return None
        return self.source_loads / self.requests

    def _at(self, fraction: float) -> float | None:
        return percentile(self.latencies_ms, fraction) if self.latencies_ms else None

    p50_ms = property(lambda self: self._at(0.50))
    p95_ms = property(lambda self: self._at(0.95))
    p99_ms = property(lambda self: self._at(0.99))
    p999_ms = property(lambda self: self._at(0.999))
    max_ms = property(lambda self: self.latencies_ms[-1] if self.latencies_ms else None)

    @property
    def hit_rate(self) -> float | None:
        if self.hits is None or self.misses is None or not self.hits + self.misses:
            return None
        return self.hits / (self.hits + self.misses)

    @property
    def throughput(self) -> float:
        """Completed requests per second."""
        return len(self.latencies_ms) / self.duration_s if self.duration_s > 0 else 0.0

    def bounds(self, fraction: float, confidence: float = CONFIDENCE) -> QuantileBounds:
        """The percentile with one-sided lower and upper bounds at ``confidence`` (for noise-aware asserts)."""
        return quantile_bounds(self.latencies_ms, fraction, confidence, confidence)

    def describe(self) -> str:
        def ms(value: float | None) -> str:
            return f"{value:.2f}" if value is not None else "-"

        hit_rate = f"{self.hit_rate:.1%}" if self.hit_rate is not None else "-"
        errors = f", {self.errors} errors (first: {self.first_error})" if self.errors else ""
        per_request = self.source_loads_per_request
        loads = f"; source loads {self.source_loads} ({per_request:.1%} of requests)" if per_request is not None else ""
        return (
            f"{self.requests} requests, {self.concurrency} concurrent, {self.throughput:.0f} req/s: "
            f"p50 {ms(self.p50_ms)} ms, p95 {ms(self.p95_ms)} ms, p99 {ms(self.p99_ms)} ms, "
            f"p99.9 {ms(self.p999_ms)} ms, max {ms(self.max_ms)} ms; hit rate {hit_rate}{errors}{loads}"
        )


def _within(events: Sequence[Event], spans: Sequence[tuple[int, int]]) -> list[Event]:
    """Events that started inside one of the (sorted, disjoint) time spans."""
    starts = [start for start, _ in spans]
    chosen = []
    for event in events:
        index = bisect.bisect_right(starts, event.start_ns) - 1
        if index >= 0 and event.start_ns <= spans[index][1]:
            chosen.append(event)
    return chosen


def _keys(events: Sequence[Event]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(key for event in events for key in event.keys))


class CacheBench:
    """The ``cache_bench`` fixture."""

    def __init__(self, context: TestContext, observing: bool) -> None:
        self._context = context
        self._observing = observing

    # ------------------------------------------------------------ speedup
    def speedup(self, call: Callable[[], Any], cold: Callable[[], Any], rounds: int = 21) -> Any:
        """Time ``call`` right after ``cold()`` emptied the cache, then again warm; once per round.

        Returns a ``Speedup``; with ``async def`` callables, a coroutine. ``cold()`` runs
        outside the timings and outside every assertion (as a warm-up block).
        """
        if not callable(call) or not callable(cold):
            raise TypeError("cache_bench.speedup: 'call' and 'cold' must be callables taking no arguments")
        require_whole("cache_bench.speedup", "rounds", rounds, low=3)
        return drive(self._speedup(call, cold, rounds), is_async(call, cold), "cache_bench.speedup")

    def _speedup(self, call: Callable[[], Any], cold: Callable[[], Any], rounds: int) -> Procedure[Speedup]:
        monitor = self._context.monitor
        with monitor.warmup():  # connections, imports, lazy initialisation: not part of any round
            yield Call(cold)
            yield Call(call)
            yield Call(call)
        cold_times, warm_times = [], []
        warm_spans = []
        for _ in range(rounds):
            with monitor.warmup():
                yield Call(cold)
            start = perf_counter_ns()
            yield Call(call)
            middle = perf_counter_ns()
            yield Call(call)
            end = perf_counter_ns()
            warm_spans.append((middle, end))
            cold_times.append((middle - start) / 1e6)
            warm_times.append((end - middle) / 1e6)
        ratios = tuple(cold_ms / max(warm_ms, 1e-6) for cold_ms, warm_ms in zip(cold_times, warm_times))
        warm_events = _within(monitor.events, warm_spans)
        warm_stats = compute_stats(warm_events)
        result = Speedup(
            interval=median_interval(ratios, CONFIDENCE),
            cold_ms=median_interval(cold_times, CONFIDENCE).median,
            warm_ms=median_interval(warm_times, CONFIDENCE).median,
            ratios=ratios,
            warm_hits=warm_stats.hits if self._observing else None,
            warm_misses=warm_stats.misses if self._observing else None,
        )
        self._context.data[DATA_SPEEDUP].append(result)
        self._context.measurements.append(
            Measurement("speedup", result.ratio, _keys(warm_events), {"low": result.low, "high": result.high})
        )
        return result

    # ------------------------------------------------------------ cost
    def cost(self, call: Callable[[], Any], calls: int = 5) -> Any:
        """Count what each of ``calls`` calls of ``call`` sent to Redis: commands, round trips, payload bytes.

        Returns a ``Cost`` (the costliest call's counts as ``round_trips``, ``commands``, ``bytes``;
        every call's in ``per_call``); with an ``async def`` callable, a coroutine. Counts, not
        clocks: the same on any machine (``cache_cost`` bounds them).
        """
        return measure_cost(self._context, call, calls)

    # ------------------------------------------------------------ load
    def load(self, call: Callable[[], Any], concurrency: int = 30, requests: int = 3000, source: Any = None) -> Any:
        """Run ``call`` ``requests`` times from ``concurrency`` threads (tasks for ``async def``).

        ``source``: the callable the application loads from on a miss (a bound method, a
        module-level function, or ``(owner, "name")``); its calls are counted meanwhile.
        Returns a ``LoadRun``; with an ``async def`` callable, a coroutine.
        """
        if not callable(call):
            raise TypeError("cache_bench.load: 'call' must be a callable taking no arguments")
        for name, value in (("concurrency", concurrency), ("requests", requests)):
            require_whole("cache_bench.load", name, value, low=1)
        if source is not None:
            where_found(source, "cache_bench.load")  # a wrong source fails now, not when the coroutine runs
        if inspect.iscoroutinefunction(call):
            return handed_out(self._load_async(call, concurrency, requests, source), "cache_bench.load")
        with counting(source, "cache_bench.load") as counter:
            return self._load_threads(call, concurrency, requests, counter)

    def stampede(
        self,
        call: Callable[[], Any],
        cold: Callable[[], Any],
        concurrency: int = 20,
        rounds: int = 3,
        source: Any = None,
    ) -> Any:
        """Release ``concurrency`` callers of ``call`` at once onto a cache ``cold()`` emptied, ``rounds`` times.

        Threads, or tasks for an ``async def`` call (then returns a coroutine). Returns a
        ``StampedeReport``: fills of the key per round, its readers, ``source`` loads.
        """
        run = StampedeRun(self._context, self._observing, call, cold, concurrency, rounds, source)
        return handed_out(run.run_tasks(), "cache_bench.stampede") if run.asynchronous else run.run_threads()

    def _load_threads(
        self, call: Callable[[], Any], concurrency: int, requests: int, counter: SourceCounter | None
    ) -> LoadRun:
        tickets = itertools.count()
        latencies: list[float] = []
        errors: list[BaseException] = []
        gate = threading.Barrier(concurrency + 1)

        def user() -> None:
            gate.wait()
            while next(tickets) < requests:
                start = perf_counter_ns()
                try:
                    call()
                except Exception as exc:  # the app's failure is a result, not a crash of the run
                    errors.append(exc)
                    continue
                latencies.append((perf_counter_ns() - start) / 1e6)

        threads = [threading.Thread(target=user, name=f"cachecheck-load-{index}") for index in range(concurrency)]
        for thread in threads:
            thread.start()
        start = perf_counter_ns()
        gate.wait()
        for thread in threads:
            thread.join()
        return self._finish(concurrency, requests, latencies, errors, start, perf_counter_ns(), counter)

    async def _load_async(self, call: Callable[[], Any], concurrency: int, requests: int, source: Any) -> LoadRun:
        tickets = itertools.count()
        latencies: list[float] = []
        errors: list[BaseException] = []

        async def user() -> None:
            while next(tickets) < requests:
                start = perf_counter_ns()
                try:
                    await call()
                except Exception as exc:
                    errors.append(exc)
                    continue
                latencies.append((perf_counter_ns() - start) / 1e6)

        with counting(source, "cache_bench.load") as counter:
            start = perf_counter_ns()
            await asyncio.gather(*(user() for _ in range(concurrency)))
            end = perf_counter_ns()
        return self._finish(concurrency, requests, latencies, errors, start, end, counter)

    def _finish(
        self,
        concurrency: int,
        requests: int,
        latencies: Sequence[float],
        errors: Sequence[BaseException],
        start_ns: int,
        end_ns: int,
        counter: SourceCounter | None,
    ) -> LoadRun:
        hits = misses = None
        if self._observing:
            stats = compute_stats(_within(self._context.monitor.events, [(start_ns, end_ns)]))
            hits, misses = stats.hits, stats.misses
        result = LoadRun(
            requests=requests,
            concurrency=concurrency,
            errors=len(errors),
            first_error=f"{type(errors[0]).__name__}: {errors[0]}" if errors else None,
            duration_s=(end_ns - start_ns) / 1e9,
            latencies_ms=tuple(sorted(latencies)),
            hits=hits,
            misses=misses,
            source_loads=counter.count if counter is not None else None,
        )
        self._context.data[DATA_LOAD].append(result)
        return result


# ---------------------------------------------------------------- marker

SPEC = MarkerSpec(
    name="cache_speedup",
    params=(Param("min", "number", positional=True, required=True, low=0, low_open=True),),
    help="cache_bench.speedup(): fails when the upper end of the speedup's 99% confidence interval is below min",
)


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    minimum = params["min"]
    results: list[Speedup] = context.data.get(DATA_SPEEDUP) or []
    if not results:
        return CheckResult(
            SPEC.name,
            FAILED,
            "cache_speedup: no speedup was measured; call cache_bench.speedup(call, cold) in the test",
        )
    worst = min(results, key=lambda result: result.ratio)
    metrics = {"speedup": worst.ratio, "speedup_low": worst.low, "speedup_high": worst.high}
    below = [result for result in results if result.high is not None and result.high < minimum]
    if below:
        result = below[0]
        hint = ""
        if result.warm_hits == 0:
            hint = "; the warm calls never hit the cache"
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_speedup: {result.describe()} is below the minimum {minimum:g}x{hint}",
            metrics,
            timing=True,
        )
    unsure = [result for result in results if result.low is None or result.low < minimum]
    if unsure:
        return CheckResult(
            SPEC.name,
            INCONCLUSIVE,
            f"cache_speedup inconclusive: {unsure[0].describe()} does not show >= {minimum:g}x; "
            "more rounds narrow the interval",
            metrics,
        )
    return CheckResult(SPEC.name, PASSED, f"cache_speedup: {worst.describe()} >= {minimum:g}x", metrics)


CHECK = Check(SPEC, evaluate)
