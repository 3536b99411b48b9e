"""Instrumentation of redis-py: every command any client sends is appended to the active log.

The wrappers replace methods on the client classes (not instances), so clients that
the code under test creates on its own are observed without any change to it. The
hot path does as little as possible: two clock reads, one tuple, one ``list.append``.
Classification into hits and misses happens later, lazily (see ``events.py``).

A raw record is ``(start_ns, duration_ns, args, reply, pipeline_id)``; ``reply`` is
the exception instance when the command failed; ``pipeline_id`` is 0 outside pipelines
and ``LOCAL`` for a read that redis-py's client-side cache (``cache_config=``, RESP3)
answered without a round trip.

Local hits are told apart by a wrapper on redis-py's ``CacheProxyConnection.read_response``
(only clients with a local cache have one): it sets a per-thread flag when it is about to
answer an observed command from the cache, which that command's wrapper takes back. Until
the first local hit of the process, the command wrapper's only extra work is reading one
attribute (~25 ns).

The plugin's own commands (``with unobserved():``) are not recorded but counted, in
``own_commands.py``; the hooks (``Interceptor``) and the state this hot path reads are in
``interception.py``: both are leaf modules. Plain clients also take the baseline probe
(``probe.py``) when one is due, so backends use them without importing this one.
The re-entry guard of cluster clients and pipelines, which also skips recording, does not
count (the outer call was recorded).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import threading
import types
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from ..interception import LOCAL, Interceptor, RawEvent, intercepting, state
from ..own_commands import (
    GUARD,
    INSIDE,
    PLUGIN,
    own_command,
    own_command_async,
    own_commands,
    own_pipeline,
    own_pipeline_async,
    stack_args,
    unobserved,
)
from .probe import probe, probe_async, probe_due

# The seam's names are also importable here, where checks and tests that drive the
# instrumentation look for them; backends import them from their leaf modules.
__all__ = [
    "LOCAL",
    "Interceptor",
    "RawEvent",
    "forwarded_name",
    "install",
    "intercepting",
    "own_commands",
    "state",
    "uninstall",
    "unobserved",
]


_pipeline_ids = itertools.count(1)


class _Served(threading.local):
    """Per thread: whether the command running now was answered from the client's local cache."""

    local = False


_served = _Served()


def _forwarder(self: Any, *args: Any, **options: Any) -> Any:
    """The shape of a method that only forwards: ``return self.<name>(*args, **options)``."""
    return self.forwarded(*args, **options)


def forwarded_name(original: Callable[..., Any]) -> str | None:
    """The method ``original`` only forwards to (redis-py 5.1+: ``Redis.execute_command`` ->
    ``_execute_command``), or None when it does anything else.

    Judged on the compiled code, not on names: same bytecode as ``_forwarder``, one name, no
    defaults or closure, so calling ``getattr(self, name)(*args, **options)`` instead is the same call.
    """
    if type(original) is not types.FunctionType:  # e.g. a tracer's proxy (wrapt) that must still run
        return None
    if original.__closure__ or original.__defaults__ or original.__kwdefaults__:
        return None
    code, reference = original.__code__, _forwarder.__code__
    kind = 0xFFFF  # varargs, generator, coroutine... (``from __future__`` flags sit above)
    same = (code.co_code, code.co_flags & kind, code.co_argcount, len(code.co_names)) == (
        reference.co_code,
        reference.co_flags & kind,
        reference.co_argcount,
        1,
    )
    return code.co_names[0] if same else None


def _wrap_command(original: Callable[..., Any], guard: bool = False, probing: bool = False) -> Callable[..., Any]:
    """Record one command; with ``probing`` (plain clients), take the baseline probe when one is due.

    Plain clients set no re-entry guard (that costs ~0.3 us a call): their single
    command never re-enters another client method. Cluster clients do (``guard``):
    they may refresh the slot map through node clients while executing.
    When ``original`` only forwards to another method, the observed path calls that
    method itself: the wrapper takes the place of redis-py's frame instead of adding
    one (a Python frame with ``*args, **options`` costs ~0.3 us, ~0.75 us on a round trip).
    """
    delegate = forwarded_name(original)

    @functools.wraps(original)
    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return original(self, *args, **options)
        inside = INSIDE.get()
        if inside:
            if inside == PLUGIN:
                return own_command(original, self, args, options)
            return original(self, *args, **options)
        interceptor = state.interceptor
        if interceptor is not None:
            interceptor.pause([args])
        token = INSIDE.set(GUARD) if guard else None
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                interceptor.before([args])
            if delegate is None:
                reply = original(self, *args, **options)
            else:
                reply = getattr(self, delegate)(*args, **options)
        except BaseException as exc:
            log.append((start, perf_counter_ns() - start, args, exc, 0))
            _served.local = False  # a local answer its reply callback then failed on
            if interceptor is not None:
                interceptor.after(args, exc)
            raise
        finally:
            if token is not None:
                INSIDE.reset(token)
        duration = perf_counter_ns() - start
        if state.client_cache and _served.local:
            _served.local = False
            log.append((start, duration, args, reply, LOCAL))
        else:
            log.append((start, duration, args, reply, 0))
        if interceptor is not None:
            interceptor.after(args, reply)
        if probing and probe_due(duration):
            probe(self)
        return reply

    execute_command.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute_command


def _wrap_async_command(original: Callable[..., Any], guard: bool = False, probing: bool = False) -> Callable[..., Any]:
    """The asyncio twin of ``_wrap_command``."""

    @functools.wraps(original)
    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return await original(self, *args, **options)
        inside = INSIDE.get()
        if inside:
            if inside == PLUGIN:
                return await own_command_async(original, self, args, options)
            return await original(self, *args, **options)
        interceptor = state.interceptor
        if interceptor is not None:
            await interceptor.pause_async([args])
        token = INSIDE.set(GUARD) if guard else None
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
                INSIDE.reset(token)
        duration = perf_counter_ns() - start
        log.append((start, duration, args, reply, 0))
        if interceptor is not None:
            interceptor.after(args, reply)
        if probing and probe_due(duration):
            await probe_async(original, self)
        return reply

    execute_command.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute_command


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
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return original(self, *args, **kwargs)
        inside = INSIDE.get()
        if inside:
            if inside == PLUGIN:
                return own_pipeline(original, self, args, kwargs)
            return original(self, *args, **kwargs)
        commands = stack_args(self)
        interceptor = state.interceptor
        if interceptor is not None:
            interceptor.pause(commands)
        token = INSIDE.set(GUARD)
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                interceptor.before(commands)
            replies = original(self, *args, **kwargs)
        except BaseException as exc:
            _record_pipeline(log, start, commands, exc)
            raise
        finally:
            INSIDE.reset(token)
        _record_pipeline(log, start, commands, replies)
        return replies

    execute.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute


def _wrap_async_pipeline(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return await original(self, *args, **kwargs)
        inside = INSIDE.get()
        if inside:
            if inside == PLUGIN:
                return await own_pipeline_async(original, self, args, kwargs)
            return await original(self, *args, **kwargs)
        commands = stack_args(self)
        interceptor = state.interceptor
        if interceptor is not None:
            await interceptor.pause_async(commands)
        token = INSIDE.set(GUARD)
        start = perf_counter_ns()
        try:
            if interceptor is not None:
                await interceptor.before_async(commands)
            replies = await original(self, *args, **kwargs)
        except BaseException as exc:
            _record_pipeline(log, start, commands, exc)
            raise
        finally:
            INSIDE.reset(token)
        _record_pipeline(log, start, commands, replies)
        return replies

    execute.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return execute


def _wrap_cache_read(original: Callable[..., Any]) -> Callable[..., Any]:
    """``CacheProxyConnection.read_response``: flags the reads it answers from the local cache.

    The test is redis-py's own (a current cache key whose entry is no longer in progress),
    made just before it makes it; nothing is changed in what it returns. Only observed
    commands are flagged (their wrapper, further up this thread's stack, takes the flag back).
    """

    @functools.wraps(original)
    def read_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        key = getattr(self, "_current_command_cache_key", None)
        if key is not None and state.log is not None and not INSIDE.get():
            entry = self._cache.get(key)
            if entry is not None and getattr(entry.status, "name", "") != "IN_PROGRESS":
                state.client_cache = True
                _served.local = True
        return original(self, *args, **kwargs)

    read_response.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return read_response


# (module, class, method, wrapper). Missing modules (valkey, old redis-py) are skipped.
_TARGETS: tuple[tuple[str, str, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    ("redis.client", "Redis", "execute_command", functools.partial(_wrap_command, probing=True)),
    ("redis.client", "Pipeline", "immediate_execute_command", _wrap_command),
    ("redis.client", "Pipeline", "execute", _wrap_pipeline),
    ("redis.connection", "CacheProxyConnection", "read_response", _wrap_cache_read),
    ("redis.asyncio.client", "Redis", "execute_command", functools.partial(_wrap_async_command, probing=True)),
    ("redis.asyncio.client", "Pipeline", "immediate_execute_command", _wrap_async_command),
    ("redis.asyncio.client", "Pipeline", "execute", _wrap_async_pipeline),
    ("redis.cluster", "RedisCluster", "execute_command", functools.partial(_wrap_command, guard=True)),
    ("redis.cluster", "ClusterPipeline", "execute", _wrap_pipeline),
    ("redis.asyncio.cluster", "RedisCluster", "execute_command", functools.partial(_wrap_async_command, guard=True)),
    ("redis.asyncio.cluster", "ClusterPipeline", "execute", _wrap_async_pipeline),
    ("valkey.client", "Valkey", "execute_command", functools.partial(_wrap_command, probing=True)),
    ("valkey.client", "Pipeline", "immediate_execute_command", _wrap_command),
    ("valkey.client", "Pipeline", "execute", _wrap_pipeline),
    ("valkey.asyncio.client", "Valkey", "execute_command", functools.partial(_wrap_async_command, probing=True)),
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
