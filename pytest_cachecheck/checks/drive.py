"""Run one measurement procedure with sync or async callables, written once.

A procedure is a generator that yields ``Call`` (call this user function, send me its
result) and ``Sleep`` steps; ``drive`` runs it directly for plain functions, or returns
a coroutine for ``async def`` ones, so ``measure(...)`` and ``await measure(...)`` share
their timing code. The generator reads the clock itself, right around each ``yield``.
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


def drive(procedure: Procedure[T], asynchronous: bool, api: str) -> Any:
    """The procedure's result, or (``asynchronous``) a coroutine that produces it."""
    return run_async(procedure) if asynchronous else run_sync(procedure, api)
