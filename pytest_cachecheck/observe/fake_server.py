"""The fake server's own view: every command fakeredis executes, scripts and functions included.

fakeredis runs the server in this process, so the plugin can observe execution below the
client, as a real server's ``INFO commandstats`` does. One seam is used:
``BaseFakeSocket._run_command(func, sig, args, from_script)``, which fakeredis calls for
every command it executes: sent by a client, queued in ``MULTI``/``EXEC``, or issued by
a Lua script or function through ``redis.call``. The wrapper appends one tuple per
command to the server's ``ServerView`` (cheap; classification into keyspace hits and
misses happens lazily, when the counters are read), and also makes sure any failure is an
error reply on one line (a Lua traceback's newlines broke the RESP framing over TCP and
stalled the client until its socket timeout; a Python exception escaping a command killed
the connection's parser).

``INFO`` (sections ``server``, ``clients``, ``memory``, ``stats``, ``commandstats``,
``keyspace``) is answered from the same counters, when the installed fakeredis has no
``INFO`` of its own, so libraries that read the server version or stats run unchanged.
``MEMORY USAGE key`` likewise, with an estimate: fakeredis does not account memory, so the
answer is the key's bytes plus its value's payload bytes (``observe.sizes``: a hash's fields
and values, a list's elements...), without the allocator and encoding overhead a real server
adds; reports label it an estimate.

Only servers the plugin attached a view to (``attach``) are counted; the seam is checked
before it is patched, and a fakeredis whose internals moved gets no server-side view and
one warning, never a crash (``install`` returns False).
"""

from __future__ import annotations

import inspect
import os
import platform
import time
import warnings
from collections import Counter
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from ..own_commands import keyspace_effect
from ..warning_types import FakeViewWarning
from .commands import HIT, MISS, classify
from .server_stats import ServerCounters
from .sizes import payload_bytes

_ATTRIBUTE = "_cachecheck_view"
_FOLD_AT = 20_000  # buffered commands folded into the counters at once (bounds memory in long tests)
_SEAM_PARAMETERS = ["self", "func", "sig", "args", "from_script"]
# Commands whose reply lists keys they looked at: those count as keys touched.
_LISTS_KEYS = frozenset({"KEYS"})
_SCANS = frozenset({"SCAN"})
_OWN_EFFECT = frozenset({"PTTL", "TTL", "PEXPIRETIME", "EXPIRETIME", "TYPE"})

Record = tuple[str, list[Any], Any, int, bool]


class ServerView:
    """Cumulative counters of one ``FakeServer``, fed by every command it executes.

    ``record`` and ``fold`` run under the server's lock (fakeredis holds it while it
    executes a command); ``counters()`` takes it.
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        self._buffer: list[Record] = []
        self.calls: Counter[str] = Counter()
        self.usec_ns: Counter[str] = Counter()
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.keys_touched = 0
        self.script_calls = 0  # commands run inside scripts and functions
        self.started = time.time()

    def fold(self) -> None:
        """Classify the buffered commands into the counters (lock held by the caller)."""
        buffer, self._buffer = self._buffer, []
        for name, args, reply, duration_ns, from_script in buffer:
            upper = name.upper()
            self.calls[upper] += 1
            self.usec_ns[upper] += duration_ns
            if from_script:
                self.script_calls += 1
            full = (upper, *args)
            reply_value = _error_or_value(reply)
            if upper in _OWN_EFFECT:
                hits, misses = keyspace_effect(upper, full, reply_value)
                self.keyspace_hits += hits
                self.keyspace_misses += misses
                self.keys_touched += 1
                continue
            _, keys, outcomes = classify(full, reply_value)
            self.keys_touched += len(keys) + _listed_keys(upper, reply_value)
            for outcome in outcomes if keys else ():
                if outcome == HIT:
                    self.keyspace_hits += 1
                elif outcome == MISS:
                    self.keyspace_misses += 1

    def counters(self) -> ServerCounters:
        """A snapshot, as a real server's ``INFO stats`` / ``INFO commandstats`` give it."""
        with self._server.lock:
            self.fold()
            return self._snapshot()

    def _snapshot(self) -> ServerCounters:
        return ServerCounters(
            self.keyspace_hits,
            self.keyspace_misses,
            Counter(self.calls),
            Counter({name: spent // 1000 for name, spent in self.usec_ns.items()}),
            keys_touched=self.keys_touched,
        )

    def info(self, sections: list[bytes]) -> bytes:
        """The ``INFO`` reply text (lock held: called from inside a command)."""
        self.fold()
        wanted = {bytes(section).decode("latin-1").lower() for section in sections} or {"default"}
        if wanted & {"all", "everything", "default"}:
            wanted = {"server", "clients", "memory", "stats", "commandstats", "keyspace"}
        lines: list[str] = []
        for section in ("server", "clients", "memory", "stats", "commandstats", "keyspace"):
            if section in wanted:
                lines.append(f"# {section.capitalize()}")
                lines.extend(f"{field}:{value}" for field, value in self._section(section))
                lines.append("")
        return "\r\n".join(lines).encode()

    def _section(self, section: str) -> list[tuple[str, Any]]:
        server = self._server
        if section == "server":
            version = ".".join(str(part) for part in (*server.version, 0, 0)[:3])
            return [
                ("redis_version", version),
                ("redis_mode", "standalone"),
                ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
                ("process_id", os.getpid()),
                ("tcp_port", 0),
                ("uptime_in_seconds", int(time.time() - self.started)),
                ("executable", "fakeredis"),
            ]
        if section == "clients":
            return [("connected_clients", len(server.sockets))]
        if section == "memory":  # fakeredis does not account memory: an estimate, 64 bytes a key
            used = sum(len(db) for db in server.dbs.values()) * 64
            return [("used_memory", used), ("used_memory_human", f"{used / 1024:.2f}K"), ("maxmemory", 0)]
        if section == "stats":
            return [
                ("total_commands_processed", sum(self.calls.values())),
                ("keyspace_hits", self.keyspace_hits),
                ("keyspace_misses", self.keyspace_misses),
                ("expired_keys", 0),
                ("evicted_keys", 0),
            ]
        if section == "commandstats":
            rows = []
            for name, calls in sorted(self.calls.items()):
                usec = self.usec_ns[name] // 1000
                rows.append(
                    (
                        "cmdstat_" + name.lower().replace(" ", "|"),
                        f"calls={calls},usec={usec},usec_per_call={usec / calls:.2f},rejected_calls=0,failed_calls=0",
                    )
                )
            return rows
        rows = []
        for index, db in sorted(server.dbs.items()):
            if len(db):
                expires = sum(1 for item in list(db.values()) if getattr(item, "expireat", None) is not None)
                rows.append((f"db{index}", f"keys={len(db)},expires={expires},avg_ttl=0"))
        return rows


def _error_or_value(reply: Any) -> Any:
    """fakeredis's errors are ``SimpleError`` values; classification wants an exception."""
    return _ReplyError(reply.value) if type(reply).__name__ == "SimpleError" else reply


class _ReplyError(Exception):
    """An error reply, for classification (outcome ``error``)."""


def _listed_keys(name: str, reply: Any) -> int:
    if name in _LISTS_KEYS and isinstance(reply, list):
        return len(reply)
    if name in _SCANS and isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list):
        return len(reply[1])
    return 0


def resp_line(text: str) -> str:
    """What a real server does to an error message: CR and LF become spaces (RESP framing)."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def install() -> bool:
    """Patch the seam and register ``INFO`` (once per fakeredis class: a re-imported fakeredis
    is patched again); False, with a warning, when this fakeredis lacks the seam."""
    try:
        from fakeredis._commands import SUPPORTED_COMMANDS, Signature
        from fakeredis._helpers import SimpleError
        from fakeredis._socket._base import BaseFakeSocket

        original = BaseFakeSocket.__dict__["_run_command"]
        if getattr(original, "_cachecheck_seam", False):
            return True
        parameters = list(inspect.signature(original).parameters)
        if parameters != _SEAM_PARAMETERS:
            raise LookupError(f"_run_command{tuple(parameters)}")
    except Exception as exc:  # any mismatch: no server-side view, never a crash
        warnings.warn(
            f"pytest-cachecheck: this fakeredis has no BaseFakeSocket._run_command(func, sig, args, from_script) "
            f"({type(exc).__name__}: {exc}); the fake backend has no server-side view (commands inside scripts "
            "are not seen); pin a fakeredis version the plugin supports or use --cache-backend server",
            FakeViewWarning,
            stacklevel=2,
        )
        return False
    BaseFakeSocket._run_command = _observed(original, SimpleError)  # type: ignore[method-assign]
    if "info" not in SUPPORTED_COMMANDS:
        BaseFakeSocket._cachecheck_info = _info_command  # type: ignore[attr-defined]
        SUPPORTED_COMMANDS["info"] = Signature("info", "_cachecheck_info", (), (bytes,))  # type: ignore[arg-type]
    if "memory usage" not in SUPPORTED_COMMANDS:
        from fakeredis._commands import COMMANDS_WITH_SUB

        BaseFakeSocket._cachecheck_memory_usage = _memory_usage_command  # type: ignore[attr-defined]
        COMMANDS_WITH_SUB.add("memory")
        SUPPORTED_COMMANDS["memory usage"] = Signature(
            "memory usage",
            "_cachecheck_memory_usage",
            (bytes,),
            (bytes,),  # type: ignore[arg-type]
        )
    return True


def estimated_memory(key: bytes, value: Any) -> int:
    """Key bytes plus value payload bytes: the fake server's answer to ``MEMORY USAGE``."""
    if isinstance(value, (bytes, str, int, float)):
        stored = payload_bytes(value)
    elif hasattr(value, "items"):  # hashes, sorted sets (member -> score)
        stored = sum(payload_bytes(field) + payload_bytes(item) for field, item in value.items())
    else:
        try:
            stored = sum(payload_bytes(item) for item in value)  # lists, sets
        except TypeError:
            stored = 0
    return len(key) + stored


def _memory_usage_command(self: Any, key: bytes, *options: bytes) -> int | None:
    """``MEMORY USAGE key [SAMPLES n]``: the estimate, or nil for a missing key."""
    try:
        item = self._db[key]
    except KeyError:
        return None
    return estimated_memory(key, item.value)


def _observed(original: Callable[..., Any], simple_error: Any) -> Callable[..., Any]:
    def _run_command(self: Any, func: Any, sig: Any, args: list[Any], from_script: bool) -> Any:
        view = getattr(self._server, _ATTRIBUTE, None)
        start = perf_counter_ns()
        try:
            result = original(self, func, sig, args, from_script)
        except Exception as exc:  # a bug inside a fake command: an error reply, as a server would send
            result = simple_error(resp_line(f"ERR {type(exc).__name__}: {exc}"))
        if type(result) is simple_error and ("\n" in result.value or "\r" in result.value):
            result.value = resp_line(result.value)
        if view is not None:
            buffer = view._buffer
            buffer.append((sig.name, args, result, perf_counter_ns() - start, from_script))
            if len(buffer) >= _FOLD_AT:
                view.fold()
        return result

    _run_command.__wrapped__ = original  # type: ignore[attr-defined]
    _run_command._cachecheck_seam = True  # type: ignore[attr-defined]
    return _run_command


def _info_command(self: Any, *sections: bytes) -> bytes:
    view = getattr(self._server, _ATTRIBUTE, None)
    if view is None:
        view = ServerView(self._server)  # a server the plugin does not watch: the sections, with zero counters
    return view.info(list(sections))


def attach(server: Any) -> ServerView | None:
    """Give ``server`` a view (installing the seam first); None when this fakeredis cannot have one."""
    if not install():
        return None
    view = getattr(server, _ATTRIBUTE, None)
    if view is None:
        view = ServerView(server)
        setattr(server, _ATTRIBUTE, view)
    return view
