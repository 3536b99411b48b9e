"""The consistency driver, written once for threads and asyncio tasks.

A run is a few *procedures* (generators): the set-up writes, one per worker, and the
after-run convergence reads. A procedure yields steps (call ``read``/``write``/``truth``,
take or release a key's write lock) and records every operation's interval itself, right
around each ``yield``. ``run_sync`` executes the steps in a thread, ``run_async`` awaits
them in a task: the only difference between the two drivers is how a call and a lock
are waited for.

Writes are serialised per key (so the order of versions is known) and values are unique
(``k03#17``), so the checker in ``history.py`` can judge every read.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from time import perf_counter_ns
from typing import Any

from ...observe import instrument
from ...observe.commands import HIT, MISS, classify
from ..history import READ, WRITE, Divergence, Operation, canonical
from .amplifier import Amplification, Amplifier, Pacer, Parking, Schedule, bind, unbind
from .progress import Progress

UNSET: Any = object()


@dataclass(frozen=True)
class Call:
    """Call the user's ``argument`` (``read``, ``write`` or ``truth``) with ``args``; its result is sent back."""

    argument: str
    function: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Acquire:
    key: Any


@dataclass(frozen=True)
class Release:
    key: Any


Step = Call | Acquire | Release
Procedure = Generator[Step, Any, Any]


class NotAwaited(TypeError):
    """A plain callable returned an awaitable: nothing would run it."""

    def __init__(self, argument: str, function: Callable[..., Any], result: Any) -> None:
        name = getattr(function, "__name__", type(function).__name__)
        super().__init__(
            f"cache_consistency.run: {argument}={name} returned an awaitable ({type(result).__name__}), "
            f"which run() would never await; pass an `async def` function as {argument}= "
            "(then `await cache_consistency.run(...)` in an async test)"
        )


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"cache_consistency.run: {name} must be a whole number >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class Plan:
    """A driver run's validated parameters."""

    keys: tuple[Any, ...]
    workers: int
    ops: int
    read_ratio: float
    seed: int
    amplification: Amplification | None
    max_staleness_ms: float

    def ops_for(self, worker: int) -> int:
        return self.ops // self.workers + (1 if worker < self.ops % self.workers else 0)


def make_plan(
    keys: Any, threads: Any, ops: Any, read_ratio: Any, amplify: Any, seed: Any, max_staleness_ms: float
) -> Plan:
    """Validate ``run()``'s arguments: one line naming the argument when one is wrong."""
    if isinstance(keys, int) and not isinstance(keys, bool):
        count = _positive_int("keys", keys)
        width = len(str(count - 1))
        names: tuple[Any, ...] = tuple(f"k{index:0{width}d}" for index in range(count))
    elif isinstance(keys, (list, tuple)) and keys and _distinct(keys):
        names = tuple(keys)
    else:
        raise ValueError(f"cache_consistency.run: keys must be a count >= 1 or a list of distinct keys, got {keys!r}")
    if not isinstance(read_ratio, (int, float)) or isinstance(read_ratio, bool) or not 0 <= read_ratio <= 1:
        raise ValueError(f"cache_consistency.run: read_ratio must be a number from 0 to 1, got {read_ratio!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"cache_consistency.run: seed must be a whole number or None, got {seed!r}")
    if isinstance(amplify, Amplification):
        amplification: Amplification | None = amplify
    elif isinstance(amplify, bool):
        amplification = Amplification() if amplify else None
    else:
        raise ValueError(f"cache_consistency.run: amplify must be True, False or an Amplification, got {amplify!r}")
    return Plan(
        keys=names,
        workers=_positive_int("threads", threads),
        ops=_positive_int("ops", ops),
        read_ratio=float(read_ratio),
        seed=seed if seed is not None else random.SystemRandom().randrange(1, 2**31),
        amplification=amplification,
        max_staleness_ms=max_staleness_ms,
    )


def _distinct(keys: Sequence[Any]) -> bool:
    try:
        return len(set(keys)) == len(keys)
    except TypeError:
        return False


class Driver:
    """One driver run: its history, amplifier, measurements and procedures."""

    def __init__(
        self,
        plan: Plan,
        read: Callable[[Any], Any],
        write: Callable[[Any, Any], Any],
        truth: Callable[[Any], Any] | None,
        next_value: Callable[[Any], str],
        progress: Progress,
        *,
        is_async: bool,
    ) -> None:
        self.plan = plan
        self.read, self.write, self.truth = read, write, truth
        self.next_value = next_value
        self.progress = progress
        self.is_async = is_async
        self.history: list[Operation] = []
        self.amplifier = Amplifier()
        self.pacer = Pacer(plan.workers, plan.read_ratio)
        amplification = plan.amplification
        self.parking = Parking(enabled=amplification is not None and amplification.steer and plan.workers > 1)

    def schedule(self, name: str, amplified: bool = True) -> Schedule:
        return Schedule(
            name,
            self.plan.seed,
            self.plan.amplification if amplified else None,
            is_async=self.is_async,
            pacer=self.pacer,
            parking=self.parking,
        )

    def worker_name(self, index: int) -> str:
        return f"{'task' if self.is_async else 'thread'}-{index + 1}"

    # ------------------------------------------------------------ procedures

    def setup(self) -> Procedure:
        """One write per key, unamplified but measured: the first scales for the delays."""
        __tracebackhide__ = True
        schedule = self.schedule("setup", amplified=False)
        token = bind(schedule)
        try:
            for key in self.plan.keys:
                yield from self._write(schedule, key)
        finally:
            unbind(token)

    def worker(self, index: int) -> Procedure:
        __tracebackhide__ = True
        schedule = self.schedule(self.worker_name(index))
        token = bind(schedule)
        choices = random.Random(f"{self.plan.seed}/ops/{index}")
        try:
            for _ in range(self.plan.ops_for(index)):
                key = choices.choice(self.plan.keys)
                if choices.random() < self.plan.read_ratio:
                    yield from self._read(schedule, key)
                else:
                    yield from self._write(schedule, self.parking.steer(key))
                self.progress.advance()
        finally:
            unbind(token)

    def _read(self, schedule: Schedule, key: Any) -> Procedure:
        __tracebackhide__ = True
        schedule.begin_operation(READ, key)
        start = perf_counter_ns()
        value = yield Call("read", self.read, (key,))
        end = perf_counter_ns()
        self.history.append(Operation(key, READ, value, start, end, True, schedule.name))
        self.pacer.add("operation", end - start)

    def _write(self, schedule: Schedule, key: Any) -> Procedure:
        __tracebackhide__ = True
        value = self.next_value(key)
        yield Acquire(key)
        schedule.begin_operation(WRITE, key)
        start = perf_counter_ns()
        try:
            yield Call("write", self.write, (key, value))
        except BaseException:
            self.history.append(Operation(key, WRITE, value, start, perf_counter_ns(), False, schedule.name))
            raise
        end = perf_counter_ns()
        self.history.append(Operation(key, WRITE, value, start, end, True, schedule.name))
        self.amplifier.landed(schedule, end)  # when the write sent no invalidating command
        self.pacer.add("operation", end - start)
        self.parking.landed(key)
        yield Release(key)

    def converge(self, client_factory: Callable[[], Any] | None) -> Procedure:
        """After quiescence: does the cache serve the truth? If not, for how much longer (TTL)?"""
        __tracebackhide__ = True
        divergences: list[Divergence] = []
        for key in self.plan.keys:
            read_start_ns, before = perf_counter_ns(), _log_length()
            served = yield Call("read", self.read, (key,))
            touched = _keys_read_since(before)
            expected = (yield Call("truth", self.truth, (key,))) if self.truth is not None else UNSET
            divergence = self._diverged(key, served, read_start_ns, touched, expected, client_factory)
            if divergence is not None:
                divergences.append(divergence)
        return tuple(divergences)

    def _diverged(
        self,
        key: Any,
        served: Any,
        read_start_ns: int,
        touched: tuple[str, ...],
        expected: Any,
        client_factory: Callable[[], Any] | None,
    ) -> Divergence | None:
        """``expected`` is what ``truth(key)`` returned, or unset: then the last acknowledged write."""
        last = next((op for op in reversed(self.history) if op.key == key and op.kind == WRITE and op.ok), None)
        if expected is UNSET:
            expected = last.value if last is not None else None
        if canonical(served) == canonical(expected):
            return None
        ttl_ms, probed_ns = _remaining_ttls(touched, client_factory)
        divergence = Divergence(
            key=str(key),
            served=served,
            truth=expected,
            age_ms=(read_start_ns - last.end_ns) / 1e6 if last is not None else None,
            ttl_ms=ttl_ms,
            probe_age_ms=(probed_ns - last.end_ns) / 1e6 if last is not None else None,
            violation=True,
        )
        return replace(divergence, violation=divergence.beyond(self.plan.max_staleness_ms))


# ---------------------------------------------------------------- runners


def _checked(step: Call, result: Any) -> Any:
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: no "coroutine was never awaited" warning on top of the error
        raise NotAwaited(step.argument, step.function, result)
    return result


def run_sync(procedure: Procedure, locks: dict[Any, threading.Lock], stop: threading.Event | None = None) -> Any:
    """Execute a procedure's steps in this thread; stops between steps once ``stop`` is set."""
    __tracebackhide__ = True
    held: list[Any] = []
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            if stop is not None and stop.is_set():
                procedure.close()
                return None
            try:
                step = procedure.throw(error) if error is not None else procedure.send(reply)
            except StopIteration as finished:
                return finished.value
            reply, error = None, None
            if isinstance(step, Acquire):
                locks[step.key].acquire()
                held.append(step.key)
            elif isinstance(step, Release):
                held.remove(step.key)
                locks[step.key].release()
            else:
                try:
                    reply = _checked(step, step.function(*step.args))
                except BaseException as exc:  # thrown into the procedure: it records a failed write
                    error = exc
    finally:
        for key in held:
            locks[key].release()


async def run_async(procedure: Procedure, locks: dict[Any, asyncio.Lock]) -> Any:
    """Execute a procedure's steps in this task, awaiting what the callables return."""
    __tracebackhide__ = True
    held: list[Any] = []
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = procedure.throw(error) if error is not None else procedure.send(reply)
            except StopIteration as finished:
                return finished.value
            reply, error = None, None
            if isinstance(step, Acquire):
                await locks[step.key].acquire()
                held.append(step.key)
            elif isinstance(step, Release):
                held.remove(step.key)
                locks[step.key].release()
            else:
                try:
                    reply = step.function(*step.args)
                    if inspect.isawaitable(reply):
                        reply = await reply
                except BaseException as exc:
                    error = exc
    finally:
        for key in held:
            locks[key].release()


def drive_threads(driver: Driver) -> None:
    """The workers as threads; errors re-raised in the caller's thread (the first one)."""
    __tracebackhide__ = True
    locks = {key: threading.Lock() for key in driver.plan.keys}
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            run_sync(driver.worker(index), locks, stop)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
            stop.set()

    workers = [
        threading.Thread(target=work, args=(index,), name=f"cachecheck-consistency-{index + 1}", daemon=True)
        for index in range(driver.plan.workers)
    ]
    for thread in workers:
        thread.start()
    while any(thread.is_alive() for thread in workers):
        next(thread for thread in workers if thread.is_alive()).join(0.2)
        driver.progress.render()
    if errors:
        raise errors[0]


async def drive_tasks(driver: Driver) -> None:
    """The workers as tasks on the running loop; the first error cancels the others."""
    __tracebackhide__ = True
    locks = {key: asyncio.Lock() for key in driver.plan.keys}
    tasks = [asyncio.ensure_future(run_async(driver.worker(index), locks)) for index in range(driver.plan.workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


# ---------------------------------------------------------------- after the run


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


def _remaining_ttls(keys: Sequence[str], client_factory: Callable[[], Any] | None) -> tuple[dict[str, int], int]:
    """Each key's PTTL, and the clock just before asking.

    The server answered after that instant, so "asked at + TTL" is a lower bound on the
    expiry: a pause on our side can make the verdict lenient, never falsely strict.
    """
    if not keys or client_factory is None:
        return {}, perf_counter_ns()
    client = client_factory()
    try:
        with instrument.unobserved():
            asked_ns = perf_counter_ns()
            return {name: int(client.pttl(name)) for name in keys}, asked_ns
    finally:
        client.close()
