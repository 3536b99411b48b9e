"""Instrumentation of redis-py: every command any client sends is appended to the active log.

The wrappers replace methods on the client classes (not instances), so clients that
the code under test creates on its own are observed without any change to it. The
hot path does as little as possible: two clock reads, one tuple, one ``list.append``.
Classification into hits and misses happens later, lazily (see ``events.py``).

A raw record is ``(start_ns, duration_ns, args, reply, pipeline_id)``; ``reply`` is
the exception instance when the command failed; ``pipeline_id`` is 0 outside pipelines.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from time import perf_counter_ns
from typing import Any

RawEvent = tuple[int, int, tuple[Any, ...], Any, int]


class Interceptor:
    """Fault injection and race amplification hook into every observed command (no-op defaults).

    ``pause`` runs before the command's timing starts: harness delays (race
    amplification) that must not count as command latency. ``before`` runs inside it:
    injected faults, whose delays count as a slow server's would.
    """

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        """Before the timed region; may sleep."""

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        """The asyncio clients' ``pause``: sleeps must not block the event loop."""

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        """Inside the timed region, before the commands are sent; may sleep or raise."""

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        """The asyncio clients' ``before``."""

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        """Once per command with its reply (or exception), after its timing ended."""


class _State:
    """Module state read on the hot path; attributes are swapped, never mutated in place."""

    log: list[RawEvent] | None = None
    interceptor: Interceptor | None = None


state = _State()
_inside: ContextVar[bool] = ContextVar("pytest_cachecheck_inside", default=False)
_pipeline_ids = itertools.count(1)


class _Chain(Interceptor):
    """Several interceptors at once (e.g. race amplification inside a latency fault)."""

    def __init__(self, members: tuple[Interceptor, ...]) -> None:
        self.members = members

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        for member in self.members:
            member.pause(commands)

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        for member in self.members:
            await member.pause_async(commands)

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        for member in self.members:
            member.before(commands)

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        for member in self.members:
            await member.before_async(commands)

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        for member in self.members:
            member.after(args, reply)


_interceptors: tuple[Interceptor, ...] = ()


def _publish() -> None:
    state.interceptor = (
        _interceptors[0] if len(_interceptors) == 1 else (_Chain(_interceptors) if _interceptors else None)
    )


@contextlib.contextmanager
def intercepting(interceptor: Interceptor) -> Iterator[Interceptor]:
    """Run ``interceptor`` on every observed command inside the block (faults, amplification)."""
    global _interceptors
    _interceptors = (*_interceptors, interceptor)
    _publish()
    try:
        yield interceptor
    finally:
        _interceptors = tuple(member for member in _interceptors if member is not interceptor)
        _publish()


@contextlib.contextmanager
def unobserved() -> Iterator[None]:
    """Commands issued inside (the plugin's own set-up and clean-up) are not recorded."""
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def _wrap_command(original: Callable[..., Any], guard: bool = False) -> Callable[..., Any]:
    """Record one command.

    Plain clients set no re-entry guard (that costs ~0.3 us a call): their single
    command never re-enters another client method. Cluster clients do (``guard``):
    they may refresh the slot map through node clients while executing.
    """

    @functools.wraps(original)
    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        log = state.log
        if log is None or _inside.get():
            return original(self, *args, **options)
        interceptor = state.interceptor
        if interceptor is not None:
            interceptor.pause([args])
        token = _inside.set(True) if guard else None
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                interceptor.before([args])
            reply = original(self, *args, **options)
        except BaseException as exc:
            log.append((start, perf_counter_ns() - start, args, exc, 0))
            if interceptor is not None:
                interceptor.after(args, exc)
            raise
        finally:
            if token is not None:
                _inside.reset(token)
        log.append((start, perf_counter_ns() - start, args, reply, 0))
        if interceptor is not None:
            interceptor.after(args, reply)
        return reply

    execute_command.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute_command


def _wrap_async_command(original: Callable[..., Any], guard: bool = False) -> Callable[..., Any]:
    """The asyncio twin of ``_wrap_command``."""

    @functools.wraps(original)
    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        log = state.log
        if log is None or _inside.get():
            return await original(self, *args, **options)
        interceptor = state.interceptor
        if interceptor is not None:
            await interceptor.pause_async([args])
        token = _inside.set(True) if guard else None
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                await interceptor.before_async([args])
            reply = await original(self, *args, **options)
        except BaseException as exc:
            log.append((start, perf_counter_ns() - start, args, exc, 0))
            if interceptor is not None:
                interceptor.after(args, exc)
            raise
        finally:
            if token is not None:
                _inside.reset(token)
        log.append((start, perf_counter_ns() - start, args, reply, 0))
        if interceptor is not None:
            interceptor.after(args, reply)
        return reply

    execute_command.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute_command


def _stack_args(pipeline: Any) -> list[tuple[Any, ...]]:
    """The queued commands' arguments, for redis-py and cluster pipelines alike."""
    stack: Any
    strategy = getattr(pipeline, "_execution_strategy", None)
    if strategy is not None:  # cluster pipelines, redis-py >= 6: their own ``command_stack`` stays empty
        stack = getattr(strategy, "command_queue", None)
        if stack is None:  # the asyncio strategy keeps only the private name
            stack = getattr(strategy, "_command_queue", ())
    else:
        stack = getattr(pipeline, "command_stack", None)
        if stack is None:
            stack = getattr(pipeline, "_command_stack", ())
    return [entry.args if hasattr(entry, "args") else entry[0] for entry in stack]


def _record_pipeline(log: list[RawEvent], start: int, commands: list[tuple[Any, ...]], replies: Any) -> None:
    """One record per queued command, each paired with its own reply.

    The pipeline's round trip is shared equally between its commands, so the sum of
    recorded durations equals the wall time spent.
    """
    if not commands:
        return
    elapsed = perf_counter_ns() - start
    share = elapsed // len(commands)
    pipeline_id = next(_pipeline_ids)
    interceptor = state.interceptor
    if isinstance(replies, BaseException) or len(replies) != len(commands):
        replies = [replies] * len(commands)
    for args, reply in zip(commands, replies):
        log.append((start, share, args, reply, pipeline_id))
        if interceptor is not None:
            interceptor.after(args, reply)


def _wrap_pipeline(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        log = state.log
        if log is None or _inside.get():
            return original(self, *args, **kwargs)
        commands = _stack_args(self)
        interceptor = state.interceptor
        if interceptor is not None:
            interceptor.pause(commands)
        token = _inside.set(True)
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                interceptor.before(commands)
            replies = original(self, *args, **kwargs)
        except BaseException as exc:
            _record_pipeline(log, start, commands, exc)
            raise
        finally:
            _inside.reset(token)
        _record_pipeline(log, start, commands, replies)
        return replies

    execute.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute


def _wrap_async_pipeline(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        log = state.log
        if log is None or _inside.get():
            return await original(self, *args, **kwargs)
        commands = _stack_args(self)
        interceptor = state.interceptor
        if interceptor is not None:
            await interceptor.pause_async(commands)
        token = _inside.set(True)
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                await interceptor.before_async(commands)
            replies = await original(self, *args, **kwargs)
        except BaseException as exc:
            _record_pipeline(log, start, commands, exc)
            raise
        finally:
            _inside.reset(token)
        _record_pipeline(log, start, commands, replies)
        return replies

    execute.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute


# (module, class, method, wrapper). Missing modules (valkey, old redis-py) are skipped.
_TARGETS: tuple[tuple[str, str, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    ("redis.client", "Redis", "execute_command", _wrap_command),
    ("redis.client", "Pipeline", "immediate_execute_command", _wrap_command),
    ("redis.client", "Pipeline", "execute", _wrap_pipeline),
    ("redis.asyncio.client", "Redis", "execute_command", _wrap_async_command),
    ("redis.asyncio.client", "Pipeline", "immediate_execute_command", _wrap_async_command),
    ("redis.asyncio.client", "Pipeline", "execute", _wrap_async_pipeline),
    ("redis.cluster", "RedisCluster", "execute_command", functools.partial(_wrap_command, guard=True)),
    ("redis.cluster", "ClusterPipeline", "execute", _wrap_pipeline),
    ("redis.asyncio.cluster", "RedisCluster", "execute_command", functools.partial(_wrap_async_command, guard=True)),
    ("redis.asyncio.cluster", "ClusterPipeline", "execute", _wrap_async_pipeline),
    ("valkey.client", "Valkey", "execute_command", _wrap_command),
    ("valkey.client", "Pipeline", "immediate_execute_command", _wrap_command),
    ("valkey.client", "Pipeline", "execute", _wrap_pipeline),
    ("valkey.asyncio.client", "Valkey", "execute_command", _wrap_async_command),
    ("valkey.asyncio.client", "Pipeline", "immediate_execute_command", _wrap_async_command),
    ("valkey.asyncio.client", "Pipeline", "execute", _wrap_async_pipeline),
)


_installs = 0


def install() -> None:
    """Wrap every known client method once; nested sessions (pytester) just count."""
    global _installs
    _installs += 1
    if _installs > 1:
        return
    for module_name, class_name, method_name, wrapper in _TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, class_name, None)
        original = cls.__dict__.get(method_name) if cls is not None else None
        if original is None or hasattr(original, "__cachecheck_original__"):
            continue
        setattr(cls, method_name, wrapper(original))


def uninstall() -> None:
    """Put the original methods back when the outermost session ends."""
    global _installs
    _installs = max(_installs - 1, 0)
    if _installs:
        return
    for module_name, class_name, method_name, _ in _TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, class_name, None)
        wrapped = cls.__dict__.get(method_name) if cls is not None else None
        original = getattr(wrapped, "__cachecheck_original__", None)
        if original is not None:
            setattr(cls, method_name, original)
