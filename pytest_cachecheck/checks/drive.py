"""Run one measurement procedure with sync or async callables, written once.

A procedure is a generator that yields ``Call`` (call this user function, send me its
result) and ``Sleep`` steps; ``drive`` runs it directly for plain functions, or returns
a coroutine for ``async def`` ones, so ``measure(...)`` and ``await measure(...)`` share
their timing code. The generator reads the clock itself, right around each ``yield``.

A coroutine handed to the test and never awaited would measure nothing and let the test pass
(``report = cache_bench.speedup(async_call, ...)`` in a sync test, a forgotten ``await``): every
coroutine a fixture method returns goes through ``handed_out``, and ``never_awaited`` names the
ones still unstarted when the test body ends, so the test fails instead. Cost: one list append per
returned coroutine, one state check per coroutine at the end of the test.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Call | Sleep
Procedure = Generator[Step, Any, T]


def is_async(*functions: Callable[..., Any] | None) -> bool:
    """True when any of the callables is an ``async def`` (also through ``functools.partial``)."""
    return any(function is not None and inspect.iscoroutinefunction(function) for function in functions)


def _not_awaitable(result: Any, function: Callable[..., Any], api: str) -> Any:
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        name = getattr(function, "__name__", repr(function))
        raise TypeError(f"{api}: {name} returned an awaitable; pass `async def` functions and use `await {api}(...)`")
    return result


def run_sync(procedure: Procedure[T], api: str) -> T:
    reply: Any = None
    while True:
        try:
            step = procedure.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                reply = None
            else:
                reply = _not_awaitable(step.function(*step.args), step.function, api)
        except Exception as exc:
            try:
                procedure.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            raise RuntimeError(f"{api}: the measurement went on after an error") from exc


async def run_async(procedure: Procedure[T]) -> T:
    reply: Any = None
    while True:
        try:
            step = procedure.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                reply = None
            else:
                reply = step.function(*step.args)
                if inspect.isawaitable(reply):
                    reply = await reply
        except Exception as exc:
            try:
                procedure.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            raise RuntimeError("a measurement went on after an error") from exc


_handed_out: list[tuple[Any, str]] = []


def handed_out(coroutine: Any, api: str) -> Any:
    """``coroutine``, remembered as returned by the fixture method ``api`` (see ``never_awaited``)."""
    _handed_out.append((coroutine, api))
    return coroutine


def never_awaited() -> list[str]:
    """The methods whose returned coroutines nobody started since the last call; closes them.

    Closing them keeps Python from adding its own "coroutine ... was never awaited" warning
    to the failure the caller reports.
    """
    forgotten = []
    for coroutine, api in _handed_out:
        if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
            coroutine.close()
            forgotten.append(api)
    _handed_out.clear()
    return forgotten


def drive(procedure: Procedure[T], asynchronous: bool, api: str) -> Any:
    """The procedure's result, or (``asynchronous``) a coroutine that produces it."""
    return handed_out(run_async(procedure), api) if asynchronous else run_sync(procedure, api)
