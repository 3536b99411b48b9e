"""Keys a test left without a TTL, worked out from the commands it issued.

A cache entry without an expiry lives until something deletes it: when the
invalidation path misses it, it is stale forever. This module replays one test's
observed commands in order and tracks, per key, whether it currently has a TTL:

* ``SET`` without ``EX``/``PX``/``EXAT``/``PXAT``/``KEEPTTL``, ``MSET``, ``GETSET``,
  ``PERSIST`` and the ``*STORE`` / ``RENAME`` destinations leave a key without TTL;
* ``SETEX``, ``PSETEX``, ``SET ... EX``, ``GETEX ... EX``, ``EXPIRE`` and friends,
  ``RESTORE`` with a TTL give it one;
* any other write that creates a key (``HSET``, ``SADD``, ``RPUSH``, ``INCR`` ...)
  leaves a new key without TTL and an existing key as it was;
* ``DEL``/``UNLINK`` and a ``GETDEL`` that found the key forget it.

Deterministic and without a server round trip: every test starts on an empty
database, so the replay knows every key's state. Commands inside Lua scripts are
invisible client-side: on backends the plugin owns, ``read_keys_at_end`` gives the
database itself at the end of the test body (every key there is the test's, scripts
included), and the ``cache_ttl`` check and the ``keys_without_ttl`` target both judge
that instead of the replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from time import perf_counter_ns
from typing import Any

from ..own_commands import unobserved
from .commands import ERROR, HIT, WRITE, key_text
from .events import Event
from .instrument import RawEvent

# Backends whose database is empty when a test starts: what is there at its end is the test's.
OWNED_BACKENDS = frozenset({"fake", "server", "docker", "cluster"})
NO_TTL = -1
_BATCH = 1000

_EXPIRY_OPTIONS = frozenset({"EX", "PX", "EXAT", "PXAT"})
GIVES_TTL = frozenset({"SETEX", "PSETEX", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"})
_REPLACES_VALUE = frozenset({"MSET", "MSETNX", "GETSET"})
_NEVER_CREATES = frozenset(
    {"LPOP", "RPOP", "SPOP", "ZPOPMIN", "ZPOPMAX", "LPUSHX", "RPUSHX", "LSET", "LINSERT", "LTRIM", "XTRIM"}
)
_DESTINATION_FIRST = frozenset(
    {
        "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE",
        "BITOP", "ZRANGESTORE", "GEOSEARCHSTORE", "PFMERGE",
    }
)  # fmt: skip
_MOVES_TO_SECOND = frozenset({"SMOVE", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH"})


def _words(args: tuple[Any, ...], start: int) -> set[str]:
    """Option words of a command (``EX``, ``KEEPTTL`` ...), upper-cased; numbers are never options."""
    words = set()
    for arg in args[start:]:
        if isinstance(arg, str):
            words.add(arg.upper())
        elif isinstance(arg, bytes):
            words.add(arg.decode("latin-1").upper())
    return words


def keys_without_ttl(events: Sequence[Event], records: Sequence[RawEvent]) -> list[str]:
    """Keys written in these events that have no TTL at the end, in the order first written.

    ``records`` are the raw records behind ``events`` (same order, same length); their
    arguments tell ``SET k v EX 10`` from ``SET k v`` and their replies whether a
    conditional write (``NX``/``XX``) happened.
    """
    has_ttl: dict[str, bool] = {}
    for event, record in zip(events, records):
        command, args, reply = event.command, record[2], record[3]
        if not event.keys or ERROR in event.outcomes:
            continue
        if command in ("DEL", "UNLINK") or (command == "GETDEL" and event.outcomes[0] == HIT):
            for key in event.keys:
                has_ttl.pop(key, None)
        elif command == "SET":
            words = _words(args, 3)
            if "KEEPTTL" not in words and _set_happened(words, reply):
                has_ttl[event.keys[0]] = bool(_EXPIRY_OPTIONS.intersection(words))
        elif command == "GETEX":
            words = _words(args, 2)
            if event.outcomes[0] == HIT and (_EXPIRY_OPTIONS.intersection(words) or "PERSIST" in words):
                has_ttl[event.keys[0]] = "PERSIST" not in words
        elif event.outcomes[0] == WRITE and reply not in (0, False, None):
            _apply_write(command, event.keys, args, has_ttl)
    return [key for key, ttl in has_ttl.items() if not ttl]


def _set_happened(words: set[str], reply: Any) -> bool:
    """Whether ``SET`` wrote: a nil reply means an ``NX``/``XX`` condition failed, except with ``GET``."""
    if "GET" not in words:
        return reply is not None
    if "NX" in words:
        return reply is None
    if "XX" in words:
        return reply is not None
    return True


def _apply_write(command: str, keys: tuple[str, ...], args: tuple[Any, ...], has_ttl: dict[str, bool]) -> None:
    if command in GIVES_TTL:
        if keys[0] in has_ttl:
            has_ttl[keys[0]] = True
    elif command == "PERSIST":
        if keys[0] in has_ttl:
            has_ttl[keys[0]] = False
    elif command in _REPLACES_VALUE:
        for key in keys:
            has_ttl[key] = False
    elif command in ("RENAME", "RENAMENX", "COPY") and len(keys) == 2:
        source, destination = keys
        state = has_ttl.get(source, False)
        if command != "COPY":
            has_ttl.pop(source, None)
        has_ttl[destination] = state
    elif command in _DESTINATION_FIRST:
        has_ttl[keys[0]] = False
    elif command in _MOVES_TO_SECOND and len(keys) == 2:
        has_ttl.setdefault(keys[1], False)
    elif command == "RESTORE":
        has_ttl[keys[0]] = len(args) > 2 and key_text(args[2]) not in ("0", "")
    elif command not in _NEVER_CREATES:
        for key in dict.fromkeys(keys):
            has_ttl.setdefault(key, False)


@dataclass(frozen=True)
class KeysAtEnd:
    """Every key in the test's database when its body ended, with its PTTL (ms, -1: none),
    and when that was read (``perf_counter_ns``), to date the TTLs against the writes."""

    pttl_ms: dict[str, int]
    body_start_ns: int
    read_start_ns: int
    read_end_ns: int

    def without_ttl(self) -> list[str]:
        return [key for key, pttl in self.pttl_ms.items() if pttl == NO_TTL]


def read_keys_at_end(client: Any, body_start_ns: int) -> KeysAtEnd | None:
    """``SCAN`` the whole database and ``PTTL`` each key (the plugin's own commands); None if refused."""
    try:
        with unobserved():
            read_start = perf_counter_ns()
            keys = list(dict.fromkeys(client.scan_iter(count=_BATCH)))
            pttls: dict[str, int] = {}
            for index in range(0, len(keys), _BATCH):
                chunk = keys[index : index + _BATCH]
                pipe = client.pipeline(transaction=False)
                for key in chunk:
                    pipe.pttl(key)
                for key, pttl in zip(chunk, pipe.execute()):
                    if int(pttl) != -2:  # expired meanwhile
                        pttls[key_text(key)] = int(pttl)
            return KeysAtEnd(pttls, body_start_ns, read_start, perf_counter_ns())
    except Exception:  # a refused SCAN (ACLs) leaves the checks on what the client saw
        return None


def setup_keys(warmup_events: Sequence[Event], events: Sequence[Event]) -> set[str]:
    """Keys written only inside ``warmup()`` blocks (cache priming, ``scaling()``'s ``populate``):
    set-up data, excluded from every assertion like its commands."""
    setup = {key for event in warmup_events for key, outcome in zip(event.keys, event.outcomes) if outcome == WRITE}
    if setup:
        setup -= {key for event in events for key, outcome in zip(event.keys, event.outcomes) if outcome == WRITE}
    return setup


def without_setup_keys(snapshot: KeysAtEnd, warmup_events: Sequence[Event], events: Sequence[Event]) -> KeysAtEnd:
    """The snapshot without ``setup_keys``."""
    setup = setup_keys(warmup_events, events)
    if not setup:
        return snapshot
    return replace(snapshot, pttl_ms={key: pttl for key, pttl in snapshot.pttl_ms.items() if key not in setup})
