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

The plugin's own commands (``with unobserved():``: set-up, clean-up, probes such as the
stale-read check's ``PTTL``) are not recorded, but they are counted per command name in
``own_commands()``: a real server counts them too, and server-side deltas
(``server_stats.py``) subtract them. Counting happens only on that unobserved path, and
while a monitor is active (a test is running: when server-side deltas are taken), so
neither the observed path nor the path without a monitor pays for it. The re-entry guard
of cluster clients and pipelines, which also skips recording, does not count (the outer
call was recorded).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import threading
import types
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from time import perf_counter_ns
from typing import Any

from .commands import word

RawEvent = tuple[int, int, tuple[Any, ...], Any, int]
LOCAL = -1  # the pipeline id of a read answered from the client's local cache


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
    client_cache = False  # True once a client-side cache answered a read in this process


class _Served(threading.local):
    """Per thread: whether the command running now was answered from the client's local cache."""

    local = False


state = _State()
# Why commands are not recorded right now: 0 (they are), _GUARD (inside an observed
# cluster call or pipeline: the outer call is recorded), _PLUGIN (the plugin's own
# commands: counted in ``_own``). Both markers are truthy, so the hot path tests one value.
_GUARD = 1
_PLUGIN = 2
_inside: ContextVar[int] = ContextVar("pytest_cachecheck_inside", default=0)
_pipeline_ids = itertools.count(1)
_served = _Served()


class OwnCommands:
    """The plugin's own commands per name (as the server's ``commandstats`` names them), and
    the keyspace hits and misses the server counted for those whose reply tells which.

    Per process; updated only on the unobserved path, under a lock (probes may run in threads).
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self._lock = threading.Lock()

    def add(self, commands: list[tuple[Any, ...]], replies: Any = None) -> None:
        """Count ``commands`` (sent); ``replies`` (a list, one each) when they were answered."""
        names = [own_command_name(args) for args in commands]
        hits = misses = 0
        if isinstance(replies, list) and len(replies) == len(commands):
            for name, args, reply in zip(names, commands, replies):
                hit, miss = keyspace_effect(name, args, reply)
                hits += hit
                misses += miss
        with self._lock:
            self.calls.update(names)
            self.keyspace_hits += hits
            self.keyspace_misses += misses

    def snapshot(self) -> tuple[Counter[str], int, int]:
        """A copy: ``(calls, keyspace_hits, keyspace_misses)`` so far."""
        with self._lock:
            return Counter(self.calls), self.keyspace_hits, self.keyspace_misses


_own = OwnCommands()


def own_commands() -> tuple[Counter[str], int, int]:
    """The plugin's own commands so far in this process (those issued while a monitor was
    active): ``(calls per name, keyspace hits, keyspace misses)``."""
    return _own.snapshot()


# Commands whose subcommand redis-py may send as a separate word; the server counts
# ``CLIENT SETINFO``, ``OBJECT ENCODING``... (``commandstats``: ``client|setinfo``).
_CONTAINERS = frozenset(
    {
        "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
        "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
    }
)  # fmt: skip


def own_command_name(args: tuple[Any, ...]) -> str:
    """``("CLIENT SETINFO", ...)`` and ``("client", "setinfo", ...)`` both -> ``"CLIENT SETINFO"``."""
    if not args:
        return ""
    name = " ".join(word(args[0]).split())
    if name in _CONTAINERS and len(args) > 1 and isinstance(args[1], (str, bytes)):
        name = f"{name} {word(args[1])}"
    return name


# Single-key reads the plugin may issue whose reply tells whether the server counted a
# keyspace hit or a miss (the server counts both for every key it looks up to read).
_MISSING_TTL = ("PTTL", "TTL", "PEXPIRETIME", "EXPIRETIME")


def keyspace_effect(name: str, args: tuple[Any, ...], reply: Any) -> tuple[int, int]:
    """``(hits, misses)`` the server counted for one of the plugin's own commands; (0, 0) when not known."""
    if isinstance(reply, BaseException):
        return 0, 0
    if name in _MISSING_TTL:
        return (0, 1) if reply == -2 else (1, 0)
    if name == "EXISTS" and isinstance(reply, int):
        return reply, max(len(args) - 1 - reply, 0)
    if name == "TYPE":
        return (0, 1) if word(reply) == "NONE" else (1, 0)
    if name == "GET":
        return (0, 1) if reply is None else (1, 0)
    return 0, 0


def _count_own(commands: list[tuple[Any, ...]], replies: Any) -> None:
    """Count the plugin's own commands; never lets a counting problem reach the caller.

    ``replies`` is the exception when they failed: a connection or timeout error means
    the server may never have run them (not counted); an error reply means it did.
    """
    if isinstance(replies, BaseException):
        if any(cls.__name__ in ("ConnectionError", "TimeoutError") for cls in type(replies).__mro__):
            return
        replies = None
    try:
        _own.add(commands, replies)
    except Exception:  # pragma: no cover - counting is best effort
        pass


def _own_command(original: Callable[..., Any], client: Any, args: tuple[Any, ...], options: Any) -> Any:
    """One of the plugin's own commands (inside ``unobserved()``): run, then count it."""
    __tracebackhide__ = True
    try:
        reply = original(client, *args, **options)
    except BaseException as exc:
        _count_own([args], exc)
        raise
    _count_own([args], [reply])
    return reply


async def _own_command_async(original: Callable[..., Any], client: Any, args: tuple[Any, ...], options: Any) -> Any:
    __tracebackhide__ = True
    try:
        reply = await original(client, *args, **options)
    except BaseException as exc:
        _count_own([args], exc)
        raise
    _count_own([args], [reply])
    return reply


def _own_pipeline(original: Callable[..., Any], pipeline: Any, args: tuple[Any, ...], options: Any) -> Any:
    """One of the plugin's own pipelines (inside ``unobserved()``): run, then count what it sent."""
    __tracebackhide__ = True
    own, first = _own_pipeline_commands(pipeline)
    try:
        replies = original(pipeline, *args, **options)
    except BaseException as exc:
        _count_own(own, exc)
        raise
    _count_own_pipeline(own, first, replies)
    return replies


async def _own_pipeline_async(original: Callable[..., Any], pipeline: Any, args: tuple[Any, ...], options: Any) -> Any:
    __tracebackhide__ = True
    own, first = _own_pipeline_commands(pipeline)
    try:
        replies = await original(pipeline, *args, **options)
    except BaseException as exc:
        _count_own(own, exc)
        raise
    _count_own_pipeline(own, first, replies)
    return replies


def _own_pipeline_commands(pipeline: Any) -> tuple[list[tuple[Any, ...]], int]:
    """What a pipeline of the plugin's sends, and where its queued commands start
    (after ``MULTI`` for a transaction; ``EXEC`` is last). Nothing is sent when empty."""
    queued = _stack_args(pipeline)
    if queued and _is_transaction(pipeline):
        return [("MULTI",), *queued, ("EXEC",)], 1
    return queued, 0


def _is_transaction(pipeline: Any) -> bool:
    """MULTI/EXEC around the queued commands (redis-py, asyncio and cluster pipelines name it differently)."""
    for name in ("transaction", "is_transaction", "_transaction", "explicit_transaction"):
        if getattr(pipeline, name, None) is True:
            return True
    return type(getattr(pipeline, "_execution_strategy", None)).__name__ == "TransactionStrategy"


def _count_own_pipeline(commands: list[tuple[Any, ...]], first: int, replies: Any) -> None:
    if isinstance(replies, list) and first:
        queued = len(commands) - 2
        replies = [None, *replies[:queued], None] if len(replies) == queued else None
    _count_own(commands, replies)


class _Chain(Interceptor):
    """Several interceptors at once (e.g. race amplification inside a latency fault)."""

    def __init__(self, members: tuple[Interceptor, ...]) -> None:
        self.members = members

    def pause(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            member.pause(commands)

    async def pause_async(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            await member.pause_async(commands)

    def before(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            member.before(commands)

    async def before_async(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for member in self.members:
            await member.before_async(commands)

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        __tracebackhide__ = True
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
    """Commands issued inside (the plugin's own set-up, clean-up and probes) are not recorded,
    only counted per name (``own_commands()``) for the server-side deltas to leave them out."""
    token = _inside.set(_PLUGIN)
    try:
        yield
    finally:
        _inside.reset(token)


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


def _wrap_command(original: Callable[..., Any], guard: bool = False) -> Callable[..., Any]:
    """Record one command.

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
        inside = _inside.get()
        if inside:
            if inside == _PLUGIN:
                return _own_command(original, self, args, options)
            return original(self, *args, **options)
        interceptor = state.interceptor
        if interceptor is not None:
            interceptor.pause([args])
        token = _inside.set(_GUARD) if guard else None
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
                _inside.reset(token)
        if state.client_cache and _served.local:
            _served.local = False
            log.append((start, perf_counter_ns() - start, args, reply, LOCAL))
        else:
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
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return await original(self, *args, **options)
        inside = _inside.get()
        if inside:
            if inside == _PLUGIN:
                return await _own_command_async(original, self, args, options)
            return await original(self, *args, **options)
        interceptor = state.interceptor
        if interceptor is not None:
            await interceptor.pause_async([args])
        token = _inside.set(_GUARD) if guard else None
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
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return original(self, *args, **kwargs)
        inside = _inside.get()
        if inside:
            if inside == _PLUGIN:
                return _own_pipeline(original, self, args, kwargs)
            return original(self, *args, **kwargs)
        commands = _stack_args(self)
        interceptor = state.interceptor
        if interceptor is not None:
            interceptor.pause(commands)
        token = _inside.set(_GUARD)
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
        __tracebackhide__ = True  # user tracebacks read test -> redis-py, not the observer
        log = state.log
        if log is None:
            return await original(self, *args, **kwargs)
        inside = _inside.get()
        if inside:
            if inside == _PLUGIN:
                return await _own_pipeline_async(original, self, args, kwargs)
            return await original(self, *args, **kwargs)
        commands = _stack_args(self)
        interceptor = state.interceptor
        if interceptor is not None:
            await interceptor.pause_async(commands)
        token = _inside.set(_GUARD)
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
        if key is not None and state.log is not None and not _inside.get():
            entry = self._cache.get(key)
            if entry is not None and getattr(entry.status, "name", "") != "IN_PROGRESS":
                state.client_cache = True
                _served.local = True
        return original(self, *args, **kwargs)

    read_response.__cachecheck_original__ = original  # type: ignore[attr-defined]
    return read_response


# (module, class, method, wrapper). Missing modules (valkey, old redis-py) are skipped.
_TARGETS: tuple[tuple[str, str, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    ("redis.client", "Redis", "execute_command", _wrap_command),
    ("redis.client", "Pipeline", "immediate_execute_command", _wrap_command),
    ("redis.client", "Pipeline", "execute", _wrap_pipeline),
    ("redis.connection", "CacheProxyConnection", "read_response", _wrap_cache_read),
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
