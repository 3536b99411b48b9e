"""The plugin's own commands: ``unobserved()`` and their accounting for server-side deltas.

A leaf module (it imports only the command table's ``word``): backends, probes and the
instrumentation all use it, so no lower layer imports the instrumentation for it.
Commands issued inside ``with unobserved():`` (set-up, clean-up, probes such as the
stale-read check's ``PTTL``) are not recorded by the instrumentation, but counted per
command name in ``own_commands()``: a real server counts them too, and server-side deltas
(``observe/server_stats.py``) subtract them. Counting happens only on that unobserved path
and only while a monitor is active, so neither the observed path nor a run without a
monitor pays for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from .observe.commands import word

# Why commands are not recorded right now: 0 (they are), GUARD (inside an observed
# cluster call or pipeline: the outer call is recorded), PLUGIN (the plugin's own
# commands: counted in ``_own``). Both markers are truthy, so the hot path tests one value.
GUARD = 1
PLUGIN = 2
INSIDE: ContextVar[int] = ContextVar("pytest_cachecheck_inside", default=0)


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


def count_own(commands: list[tuple[Any, ...]], replies: Any) -> None:
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


def own_command(original: Callable[..., Any], client: Any, args: tuple[Any, ...], options: Any) -> Any:
    """One of the plugin's own commands (inside ``unobserved()``): run, then count it."""
    __tracebackhide__ = True
    try:
        reply = original(client, *args, **options)
    except BaseException as exc:
        count_own([args], exc)
        raise
    count_own([args], [reply])
    return reply


async def own_command_async(original: Callable[..., Any], client: Any, args: tuple[Any, ...], options: Any) -> Any:
    __tracebackhide__ = True
    try:
        reply = await original(client, *args, **options)
    except BaseException as exc:
        count_own([args], exc)
        raise
    count_own([args], [reply])
    return reply


def own_pipeline(original: Callable[..., Any], pipeline: Any, args: tuple[Any, ...], options: Any) -> Any:
    """One of the plugin's own pipelines (inside ``unobserved()``): run, then count what it sent."""
    __tracebackhide__ = True
    own, first = _own_pipeline_commands(pipeline)
    try:
        replies = original(pipeline, *args, **options)
    except BaseException as exc:
        count_own(own, exc)
        raise
    _count_own_pipeline(own, first, replies)
    return replies


async def own_pipeline_async(original: Callable[..., Any], pipeline: Any, args: tuple[Any, ...], options: Any) -> Any:
    __tracebackhide__ = True
    own, first = _own_pipeline_commands(pipeline)
    try:
        replies = await original(pipeline, *args, **options)
    except BaseException as exc:
        count_own(own, exc)
        raise
    _count_own_pipeline(own, first, replies)
    return replies


def _own_pipeline_commands(pipeline: Any) -> tuple[list[tuple[Any, ...]], int]:
    """What a pipeline of the plugin's sends, and where its queued commands start
    (after ``MULTI`` for a transaction; ``EXEC`` is last). Nothing is sent when empty."""
    queued = stack_args(pipeline)
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
    count_own(commands, replies)


@contextlib.contextmanager
def unobserved() -> Iterator[None]:
    """Commands issued inside (the plugin's own set-up, clean-up and probes) are not recorded,
    only counted per name (``own_commands()``) for the server-side deltas to leave them out."""
    token = INSIDE.set(PLUGIN)
    try:
        yield
    finally:
        INSIDE.reset(token)


def stack_args(pipeline: Any) -> list[tuple[Any, ...]]:
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
