"""Value sizes: the bytes a command sent and received, and the value bytes it wrote to or read from each key.

Computed from a raw record's arguments and reply when something asks (a ``CacheStats``,
the ``cache_size`` check, the run summary), never on the recording path: recording keeps
its two clock reads and one append, and a test that never looks at sizes pays nothing.

What is counted (payload, not RESP framing, so the numbers mean the same on every server,
protocol and client):

* a ``str`` counts its UTF-8 bytes (redis-py's default encoding), ``bytes`` their length, a
  number its decimal text (as redis-py sends it); ``None`` and booleans (replies that
  redis-py turned into ``True``, such as ``SET``'s ``OK``) count nothing; lists, sets and
  dicts (parsed replies such as ``HGETALL``) the sum of their items;
* bytes sent: every argument, command name and keys included;
* bytes received: the reply's payload;
* a write's value bytes (``max_value_bytes``, ``bytes_written``): what it stores under the
  key: ``SET``'s value (not its ``EX 60``), each ``MSET`` value, ``SETEX``'s value; for
  other writes (``HSET``, ``RPUSH``, ``SADD``, ``ZADD``...) every argument after the key,
  fields, members and scores included. ``HSET h f v`` thus counts ``f`` and ``v``: the
  bytes that command put into the hash, not the hash's size (``memory_kb`` is that);
* a hit's value bytes (``bytes_read``): the reply's payload, per element for ``MGET``.
"""

from __future__ import annotations

from typing import Any

from .commands import HIT, WRITE

# Writes whose stored value is one argument at a fixed index (after options come more words).
_VALUE_AT = {
    "SET": 2,
    "SETNX": 2,
    "GETSET": 2,
    "APPEND": 2,
    "SETEX": 3,
    "PSETEX": 3,
    "SETRANGE": 3,
    "LSET": 3,
    "JSON.SET": 3,
    "JSON.MERGE": 3,
}
_BYTES_ONLY = frozenset({bytes})
_TEXT_ONLY = {str}
# Writes that store nothing of their own (a counter, an expiry, a move): no value bytes.
_NO_VALUE = frozenset(
    {
        "INCR", "INCRBY", "INCRBYFLOAT", "DECR", "DECRBY", "HINCRBY", "HINCRBYFLOAT", "ZINCRBY",
        "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "HEXPIRE", "HPEXPIRE",
        "LPOP", "RPOP", "SPOP", "ZPOPMIN", "ZPOPMAX", "LTRIM", "XTRIM",
        "RENAME", "RENAMENX", "SMOVE", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "COPY",
        "BITOP", "ZRANGESTORE", "GEOSEARCHSTORE", "SORT", "XGROUP CREATE", "GEORADIUS", "GEORADIUSBYMEMBER",
        "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "PFMERGE",
    }
)  # fmt: skip


def payload_bytes(value: Any) -> int:
    """Bytes of one argument or reply, as described in the module docstring; objects of other
    kinds (an exception, a parsed reply object) count nothing."""
    kind = type(value)
    if kind is bytes:
        return len(value)
    if kind is str:
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (int, float)):
        return len(repr(value))
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, dict):
        return sum(payload_bytes(item) for pair in value.items() for item in pair)
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(payload_bytes(item) for item in value)
    return 0


def bytes_sent(args: tuple[Any, ...]) -> int:
    """Payload bytes of every argument the command sent, its name included."""
    return sum(payload_bytes(arg) for arg in args)


def bytes_received(reply: Any) -> int:
    """Payload bytes of the reply (0 for an error)."""
    return payload_bytes(reply)


def written_value_bytes(command: str, args: tuple[Any, ...]) -> int:
    """The value bytes one single-key write stored under its key (see the module docstring)."""
    at = _VALUE_AT.get(command)
    if at is not None:
        return payload_bytes(args[at]) if len(args) > at else 0
    if command in _NO_VALUE:
        return 0
    return sum(payload_bytes(arg) for arg in args[2:])


def payload_sizes(values: list[Any]) -> list[int]:
    """``payload_bytes`` of each value; bytes (nearly every reply and value) and ASCII text at C speed."""
    kinds = set(map(type, values))
    if kinds <= _BYTES_ONLY or (kinds == _TEXT_ONLY and "".join(values).isascii()):
        return list(map(len, values))
    return [payload_bytes(value) for value in values]


def written_sizes(command: str, args_list: list[tuple[Any, ...]]) -> list[int]:
    """``written_value_bytes`` of many writes of one command (a group in the run summary)."""
    at = _VALUE_AT.get(command)
    if at is not None:
        try:
            return payload_sizes([args[at] for args in args_list])
        except IndexError:  # a malformed command (the server answered it with an error)
            pass
    return [written_value_bytes(command, args) for args in args_list]


def value_size(command: str, args: tuple[Any, ...], reply: Any, outcome: str) -> int:
    """Value bytes of a single-key command: read for a hit, written for a write, else 0."""
    if outcome == HIT:
        return payload_bytes(reply)
    if outcome == WRITE:
        return written_value_bytes(command, args)
    return 0


def value_sizes(
    command: str, args: tuple[Any, ...], reply: Any, keys: tuple[str, ...], outcomes: tuple[str, ...]
) -> tuple[int, ...]:
    """Value bytes per key, parallel to an event's ``keys``: ``MSET``'s and ``JSON.MSET``'s values
    per key, ``MGET``'s and ``HMGET``'s reply per element; a single-key command as ``value_size``."""
    if len(keys) == 1:
        return (value_size(command, args, reply, outcomes[0]),)
    if command in ("MSET", "MSETNX"):
        values = args[2::2]
    elif command == "JSON.MSET":
        values = args[3::3]
    elif command in ("MGET", "JSON.MGET", "HMGET") and isinstance(reply, (list, tuple)) and len(reply) == len(keys):
        values = tuple(reply)
    else:  # DEL a b, EXISTS a b, SUNIONSTORE dest a b ...: no value of their own per key
        return (0,) * len(keys)
    return tuple(payload_bytes(value) if outcome in (WRITE, HIT) else 0 for value, outcome in zip(values, outcomes)) + (
        0,
    ) * max(len(keys) - len(values), 0)
