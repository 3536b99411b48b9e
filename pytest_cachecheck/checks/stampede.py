"""Stampedes: ``@pytest.mark.cache_stampede(max_fills=1, *, pattern="*")`` and ``cache_bench.stampede``.

A stampede (thundering herd, dogpile) is many callers missing one cold key at once and
each loading it from the source and filling it. The marker judges every cold burst the
test's own commands show (``observe.bursts``: record mode, the test's own threads or
tasks count); ``cache_bench.stampede(call, cold)`` makes bursts on purpose: it releases
``concurrency`` threads (tasks for ``async def``) at a barrier onto a just-emptied cache,
``rounds`` times, after one warm-up round outside every count (it opens the connections
``concurrency`` callers need: with one pooled connection, the first caller of a cold pool
fills before the others have connected). Both decide on counts; the clock only orders commands.

A burst (SPEC 5.8, made precise in ``observe.bursts``): its readers are the misses of a key until
its first fill is visible (the earliest moment a read can hit); its fills are those readers' cold
fills (a write by a caller whose latest read of the key missed), even one that lands after another
caller's hit: that late fill is the stampede. A write after the caller's own hit is an update.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from ..metrics import Measurement
from ..observe.bursts import Burst, find_bursts, worst
from ..observe.events import Event
from ..observe.patterns import MATCH_ALL, matcher, shown_key
from .arguments import MarkerSpec, Param, require_whole
from .base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, TestContext
from .origin import SourceCounter, counting, where_found

DATA_STAMPEDE = "stampede"
METRIC = "max_fills"
_API = "cache_bench.stampede"
_SINGLE_FLIGHT = "make the fill single-flight: a lock, a SET NX lease, or the library's stampede protection"


@dataclass(frozen=True)
class StampedeReport:
    """What ``cache_bench.stampede`` saw, one entry per round.

    ``fills``: the most fills of one key in the round's cold bursts; ``readers``: that
    burst's readers (reads that missed the key before its first fill was visible);
    ``keys``: its key (None: no read missed in the round). ``source_loads``: calls of
    ``source`` per round (None without ``source=``). ``fills``, ``readers`` and ``keys``
    are empty when commands were not observed (``--cache-no-monitor``).
    """

    concurrency: int
    fills: tuple[int, ...]
    readers: tuple[int, ...]
    keys: tuple[str | None, ...]
    source_loads: tuple[int, ...] | None
    errors: int
    first_error: str | None

    @property
    def rounds(self) -> int:
        return len(self.source_loads if self.source_loads is not None else self.fills)

    @property
    def max_fills(self) -> int | None:
        """The most fills of one key in any round's burst (None when not observed)."""
        return max(self.fills) if self.fills else None

    @property
    def source_loads_per_call(self) -> float | None:
        """Source loads per call of ``call`` over all rounds (1/concurrency when single-flight)."""
        if self.source_loads is None:
            return None
        return sum(self.source_loads) / (self.concurrency * self.rounds)

    @property
    def cold_rounds(self) -> tuple[int, ...]:
        """Rounds (1-based) in which no read missed: ``cold()`` did not empty what ``call()`` reads."""
        return tuple(number for number, key in enumerate(self.keys, start=1) if key is None)

    def describe(self) -> str:
        parts = [f"{self.concurrency} concurrent callers x {self.rounds} rounds"]
        if self.fills:
            key = next((key for fills, key in zip(self.fills, self.keys) if fills == self.max_fills), None)
            where = f" (key {shown_key(key)!r})" if key is not None else ""
            parts.append(f"fills per round {list(self.fills)}{where}, readers {list(self.readers)}")
        if self.source_loads is not None:
            parts.append(f"source loads per round {list(self.source_loads)}")
        if self.errors:
            parts.append(f"{self.errors} errors (first: {self.first_error})")
        return "; ".join(parts)


def _events_within(events: Sequence[Event], start_ns: int, end_ns: int) -> list[Event]:
    return [event for event in events if start_ns <= event.start_ns <= end_ns]


class StampedeRun:
    """One ``cache_bench.stampede`` call: validated arguments, then rounds (threads or tasks)."""

    def __init__(
        self,
        context: TestContext,
        observing: bool,
        call: Callable[[], Any],
        cold: Callable[[], Any],
        concurrency: int,
        rounds: int,
        source: Any,
    ) -> None:
        if not callable(call) or not callable(cold):
            raise TypeError(f"{_API}: 'call' and 'cold' must be callables taking no arguments")
        require_whole(_API, "concurrency", concurrency, low=2)
        require_whole(_API, "rounds", rounds, low=1)
        if not observing and source is None:
            raise RuntimeError(
                f"{_API} counts fills from observed commands, which --cache-no-monitor switches off; "
                "drop that option, or pass source= to count the source's loads"
            )
        if source is not None:
            where_found(source, _API)
        self.asynchronous = inspect.iscoroutinefunction(call)
        if not self.asynchronous and inspect.iscoroutinefunction(cold):
            raise TypeError(f"{_API}: 'cold' is async def but 'call' is not; pass both as async def, or both plain")
        self._context = context
        self._observing = observing
        self._call, self._cold = call, cold
        self._concurrency, self._rounds, self._source = concurrency, rounds, source
        self._errors: list[BaseException] = []
        self._spans: list[tuple[int, int]] = []
        self._loads: list[int] = []

    # -- threads
    def run_threads(self) -> StampedeReport:
        with counting(self._source, _API) as counter:
            with self._context.monitor.warmup():  # a pool of connections, lazy initialisation: not a round
                self._cold_plain()
                self._threads_round()
            self._errors.clear()
            for _ in range(self._rounds):
                with self._context.monitor.warmup():
                    self._cold_plain()
                before = counter.count if counter is not None else 0
                self._spans.append(self._threads_round())
                self._count_loads(counter, before)
        return self._finish()

    @staticmethod
    def _plain(function: Callable[[], Any], name: str) -> TypeError | None:
        """Call ``function``; a usage error (not raised: a caller thread hands it back) if it returned an awaitable."""
        result = function()
        if not inspect.isawaitable(result):
            return None
        if inspect.iscoroutine(result):
            result.close()
        return TypeError(f"{_API}: {name!r} returned an awaitable; pass async def functions and await {_API}(...)")

    def _cold_plain(self) -> None:
        problem = self._plain(self._cold, "cold")
        if problem is not None:
            raise problem

    def _threads_round(self) -> tuple[int, int]:
        gate = threading.Barrier(self._concurrency + 1)

        misuse: list[TypeError] = []

        def caller() -> None:
            gate.wait()
            try:
                problem = self._plain(self._call, "call")
            except Exception as exc:  # the app's failure is a result, not a crash of the run
                self._errors.append(exc)
                return
            if problem is not None:
                misuse.append(problem)

        threads = [
            threading.Thread(target=caller, name=f"cachecheck-stampede-{index}") for index in range(self._concurrency)
        ]
        for thread in threads:
            thread.start()
        start = perf_counter_ns()
        gate.wait()
        for thread in threads:
            thread.join()
        if misuse:
            raise misuse[0]
        return start, perf_counter_ns()

    # -- tasks
    async def run_tasks(self) -> StampedeReport:
        with counting(self._source, _API) as counter:
            with self._context.monitor.warmup():
                await self._await(self._cold())
                await self._tasks_round()
            self._errors.clear()
            for _ in range(self._rounds):
                with self._context.monitor.warmup():
                    await self._await(self._cold())
                before = counter.count if counter is not None else 0
                self._spans.append(await self._tasks_round())
                self._count_loads(counter, before)
        return self._finish()

    @staticmethod
    async def _await(result: Any) -> Any:
        return await result if inspect.isawaitable(result) else result

    async def _tasks_round(self) -> tuple[int, int]:
        gate = asyncio.Event()

        async def caller() -> None:
            await gate.wait()
            try:
                await self._call()
            except Exception as exc:
                self._errors.append(exc)

        tasks = [asyncio.ensure_future(caller()) for _ in range(self._concurrency)]
        await asyncio.sleep(0)  # every task is waiting at the gate
        start = perf_counter_ns()
        gate.set()
        await asyncio.gather(*tasks)
        return start, perf_counter_ns()

    # -- results
    def _count_loads(self, counter: SourceCounter | None, before: int) -> None:
        if counter is not None:
            self._loads.append(counter.count - before)

    def _finish(self) -> StampedeReport:
        fills: list[int] = []
        readers: list[int] = []
        keys: list[str | None] = []
        if self._observing:
            events = self._context.monitor.events
            for start, end in self._spans:
                bursts = find_bursts(_events_within(events, start, end))
                round_worst = worst(bursts)
                fills.append(round_worst.fills if round_worst else 0)
                readers.append(round_worst.readers if round_worst else 0)
                keys.append(round_worst.key if round_worst else None)
                self._context.measurements.extend(fill_measurements(bursts))
        errors = self._errors
        report = StampedeReport(
            concurrency=self._concurrency,
            fills=tuple(fills),
            readers=tuple(readers),
            keys=tuple(keys),
            source_loads=tuple(self._loads) if self._source is not None else None,
            errors=len(errors),
            first_error=f"{type(errors[0]).__name__}: {errors[0]}" if errors else None,
        )
        self._context.data[DATA_STAMPEDE].append(report)
        return report


def fill_measurements(bursts: Sequence[Burst]) -> list[Measurement]:
    """``max_fills`` for run-wide targets: one measurement per fill count, naming the keys with that many.

    A target's value is the largest count whose keys include one of its pattern, which is
    exactly the most fills of a matching key: no per-key measurement is needed. Only bursts
    with two readers or more count: one reader fills once at most, so such a burst tested
    nothing, and a run made only of them has no data (not a met target).
    """
    most: dict[str, int] = {}
    for burst in bursts:
        if burst.readers >= 2:
            most[burst.key] = max(most.get(burst.key, 0), burst.fills)
    keys_by_fills: dict[int, list[str]] = defaultdict(list)
    for key, fills in most.items():
        keys_by_fills[fills].append(key)
    return [Measurement(METRIC, fills, tuple(keys)) for fills, keys in sorted(keys_by_fills.items())]


def record_measurements(events: Sequence[Event]) -> list[Measurement]:
    """``max_fills`` of a test without the marker, when a run-wide target asks for it (record mode)."""
    return fill_measurements(find_bursts(events))


# ---------------------------------------------------------------- marker


SPEC = MarkerSpec(
    name="cache_stampede",
    params=(
        Param("max_fills", "int", positional=True, default=1, low=1),
        Param("pattern", "pattern", default="*"),
    ),
    help="every cold burst of a key matching pattern (callers that missed it before its first fill was visible) "
    "fills it at most max_fills times",
)


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    limit, pattern = params["max_fills"], params["pattern"]
    bursts = find_bursts(context.monitor.events)  # every key's, for the run-wide max_fills target
    context.measurements.extend(fill_measurements(bursts))
    if pattern != MATCH_ALL:
        match = matcher(pattern)
        bursts = [burst for burst in bursts if match(burst.key)]
    where = f"keys matching {pattern!r}" if pattern != "*" else "any key"
    reports: list[StampedeReport] = context.data.get(DATA_STAMPEDE) or []
    loads = "".join(
        f"; source loads per round {list(report.source_loads)}" for report in reports if report.source_loads
    )
    worst_burst = worst(bursts)
    metrics: dict[str, Any] = {
        "max_fills": worst_burst.fills if worst_burst else None,
        "readers": worst_burst.readers if worst_burst else None,
        "bursts": len(bursts),
    }
    cold = next((report for report in reports if report.cold_rounds), None)
    if cold is not None:
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_stampede: in round(s) {list(cold.cold_rounds)} of {_API} no read missed: "
            "cold() must empty the keys call() reads (delete them, or flush the test's database)",
            metrics,
        )
    if worst_burst is None:
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_stampede: no read of {where} missed, so no cold burst was observed; read keys through the "
            f"cache while they are cold, e.g. {_API}(call, cold)",
            metrics,
        )
    if worst_burst.fills > limit:
        stampeded = [burst for burst in bursts if burst.fills > limit]
        others = f"; {len(stampeded)} bursts over the limit" if len(stampeded) > 1 else ""
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_stampede: key {shown_key(worst_burst.key)!r} was filled {worst_burst.fills} times in one cold "
            f"burst, {worst_burst.readers} reads missed it before the first fill was visible "
            f"(max_fills={limit}){others}{loads}; {_SINGLE_FLIGHT}",
            metrics,
        )
    concurrent = max(bursts, key=lambda burst: burst.readers)
    if concurrent.readers < 2:
        return CheckResult(
            SPEC.name,
            INCONCLUSIVE,
            f"cache_stampede inconclusive: {len(bursts)} cold burst(s) of {where}, each missed by one read only, "
            f"so no stampede could happen; release several callers at once onto a cold key, e.g. {_API}(call, cold)",
            metrics,
        )
    return CheckResult(
        SPEC.name,
        PASSED,
        f"cache_stampede: at most {worst_burst.fills} fill(s) per cold burst over {len(bursts)} bursts "
        f"(up to {concurrent.readers} reads missed {shown_key(concurrent.key)!r} before its fill was visible){loads}",
        metrics,
    )


CHECK = Check(SPEC, evaluate)
