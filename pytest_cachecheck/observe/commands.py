"""Command table: where a Redis command's keys are, and what its reply means for the cache.

Written by hand rather than read from ``COMMAND INFO`` so that classification is a
pure function of (arguments, reply): it needs no server round trip, works the same
on fakeredis and every Redis version, and stays deterministic in reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HIT = "hit"
MISS = "miss"
WRITE = "write"
DELETE = "delete"
OTHER = "other"
ERROR = "error"
OUTCOMES = (HIT, MISS, WRITE, DELETE, OTHER, ERROR)

KeyExtractor = Callable[[tuple[Any, ...]], tuple[Any, ...]]


def _first(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return args[1:2]


def _first_two(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return args[1:3]


def _all(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return args[1:]


def _all_but_last(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return args[1:-1]


def _pairs(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return args[1::2]


def _none(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return ()


def _numkeys(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """EVAL script numkeys key... arg... (also EVALSHA, FCALL)."""
    try:
        count = int(args[2])
    except (IndexError, ValueError, TypeError):
        return ()
    return args[3 : 3 + count]


def _numkeys_first(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """ZUNION / SINTERCARD style: numkeys key... [options]."""
    try:
        count = int(args[1])
    except (IndexError, ValueError, TypeError):
        return ()
    return args[2 : 2 + count]


def _dest_numkeys(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """ZUNIONSTORE destination numkeys key..."""
    try:
        count = int(args[2])
    except (IndexError, ValueError, TypeError):
        return args[1:2]
    return args[1:2] + args[3 : 3 + count]


# Reply interpretations. Each gets (keys, args, reply) and returns one outcome per key.
NIL = "nil"  # None reply = miss (GET, HGET, ZSCORE ...)
NIL_EACH = "nil_each"  # list reply, one element per key, None = miss (MGET)
NIL_FIELDS = "nil_fields"  # one key, list reply per field, None = miss (HMGET)
EMPTY = "empty"  # whole-key read, empty collection = miss (HGETALL, SMEMBERS)
COUNT = "count"  # integer = how many of the keys exist (EXISTS)
BOOL = "bool"  # 0/False = miss (HEXISTS, SISMEMBER)
WRITES = "write"
DELETES = "delete"
OTHERS = "other"

_TABLE: dict[str, tuple[KeyExtractor, str]] = {}


def _define(kind: str, extractor: KeyExtractor, *names: str) -> None:
    for name in names:
        _TABLE[name] = (extractor, kind)


_define(
    NIL,
    _first,
    "GET",
    "GETEX",
    "GETDEL",
    "HGET",
    "ZSCORE",
    "JSON.GET",
    "LINDEX",
    "ZRANK",
    "ZREVRANK",
    "HGETDEL",
    "HGETEX",
    "LPOS",
)
_define(NIL_EACH, _all, "MGET")
_define(NIL_EACH, _first, "JSON.MGET")
_define(NIL_FIELDS, _first, "HMGET", "ZMSCORE", "SMISMEMBER")
_define(
    EMPTY,
    _first,
    "HGETALL",
    "SMEMBERS",
    "LRANGE",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "HKEYS",
    "HVALS",
    "XRANGE",
    "XREVRANGE",
    "SRANDMEMBER",
    "HRANDFIELD",
    "ZRANDMEMBER",
    "GETRANGE",
    "SUBSTR",
)
_define(COUNT, _all, "EXISTS")
_define(BOOL, _first, "HEXISTS", "SISMEMBER")
_define(
    WRITES,
    _first,
    "SET",
    "SETEX",
    "PSETEX",
    "SETNX",
    "SETRANGE",
    "APPEND",
    "GETSET",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "DECR",
    "DECRBY",
    "HSET",
    "HSETNX",
    "HMSET",
    "HINCRBY",
    "HINCRBYFLOAT",
    "LPUSH",
    "RPUSH",
    "LPUSHX",
    "RPUSHX",
    "LSET",
    "LINSERT",
    "LTRIM",
    "SADD",
    "ZADD",
    "ZINCRBY",
    "XADD",
    "XTRIM",
    "PFADD",
    "SETBIT",
    "BITFIELD",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "PERSIST",
    "JSON.SET",
    "JSON.MERGE",
    "JSON.NUMINCRBY",
    "JSON.ARRAPPEND",
    "GEOADD",
    "RESTORE",
    "HEXPIRE",
    "HPEXPIRE",
    "HSETEX",
    "LPOP",
    "RPOP",
    "SPOP",
    "ZPOPMIN",
    "ZPOPMAX",
)
_define(WRITES, _pairs, "MSET", "MSETNX")
_define(WRITES, _first_two, "RENAME", "RENAMENX", "SMOVE", "LMOVE", "RPOPLPUSH", "COPY")
_define(WRITES, _dest_numkeys, "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE")
_define(WRITES, _all, "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "PFMERGE")
_define(DELETES, _all, "DEL", "UNLINK")
_define(
    DELETES,
    _first,
    "HDEL",
    "SREM",
    "ZREM",
    "LREM",
    "ZREMRANGEBYSCORE",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYLEX",
    "JSON.DEL",
    "JSON.FORGET",
    "XDEL",
)
_define(DELETES, _none, "FLUSHDB", "FLUSHALL")
_define(OTHERS, _numkeys, "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO")
_define(OTHERS, _numkeys_first, "ZUNION", "ZINTER", "ZDIFF", "SINTERCARD", "ZINTERCARD")
_define(
    OTHERS,
    _first,
    "TTL",
    "PTTL",
    "EXPIRETIME",
    "PEXPIRETIME",
    "TYPE",
    "STRLEN",
    "HLEN",
    "LLEN",
    "SCARD",
    "ZCARD",
    "ZCOUNT",
    "DUMP",
    "HSTRLEN",
    "BITCOUNT",
    "PFCOUNT",
    "XLEN",
    "HTTL",
    "HPTTL",
)
_define(OTHERS, _all, "WATCH", "TOUCH", "SINTER", "SUNION", "SDIFF")
_define(OTHERS, _all_but_last, "BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX")

_UNKNOWN: tuple[KeyExtractor, str] = (_none, OTHERS)
_UNKNOWN_SPEC: tuple[str, KeyExtractor, str] = ("", _none, OTHERS)


def command_name(args: tuple[Any, ...]) -> str:
    """Upper-case command name; redis-py sends multi-word commands as one string."""
    name = args[0] if args else ""
    if isinstance(name, (bytes, bytearray, memoryview)):
        name = bytes(name).decode("ascii", "replace")
    return str(name).upper()


def key_text(key: Any) -> str:
    """Keys as text for glob matching and reports; bytes that are not UTF-8 stay visible."""
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key).decode("utf-8", "backslashreplace")
    return str(key)


def _is_empty(reply: Any) -> bool:
    if reply is None:
        return True
    try:
        return len(reply) == 0
    except TypeError:
        return False


_SPECS: dict[Any, tuple[str, KeyExtractor, str]] = {}


def _spec(raw_name: Any) -> tuple[str, KeyExtractor, str]:
    """(name, key extractor, kind) for a command's first argument, memoised by its raw form."""
    spec = _SPECS.get(raw_name)
    if spec is None:
        name = command_name((raw_name,))
        extractor, kind = _TABLE.get(name, _UNKNOWN)
        spec = (name, extractor, kind)
        if len(_SPECS) < 4096:
            _SPECS[raw_name] = spec
    return spec


def classify(args: tuple[Any, ...], reply: Any) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Return (command, keys, one outcome per key) for one command and its reply.

    ``reply`` is an exception instance when the command failed. Commands without
    keys get a single outcome and no key (``keys=()``, ``outcomes=(outcome,)``).
    """
    try:
        name, extractor, kind = _spec(args[0]) if args else _UNKNOWN_SPEC
    except TypeError:  # an unhashable command name
        name, extractor, kind = command_name(args), *_UNKNOWN
    keys = tuple(key if type(key) is str else key_text(key) for key in extractor(args))
    if isinstance(reply, BaseException):
        return name, keys, (ERROR,) * max(len(keys), 1)
    if kind == NIL:
        outcome = MISS if reply is None else HIT
    elif kind == EMPTY:
        outcome = MISS if _is_empty(reply) else HIT
    elif kind == BOOL:
        outcome = HIT if reply else MISS
    elif kind == NIL_EACH:
        return name, keys, _per_element(reply, len(keys))
    elif kind == NIL_FIELDS:
        fields = _per_element(reply, len(reply) if isinstance(reply, (list, tuple)) else 1)
        return name, keys * len(fields), fields
    elif kind == COUNT:
        present = reply if isinstance(reply, int) else 0
        return name, keys, tuple(HIT if index < present else MISS for index in range(len(keys)))
    else:
        outcome = kind
    return name, keys, (outcome,) * max(len(keys), 1)


def _per_element(reply: Any, count: int) -> tuple[str, ...]:
    if not isinstance(reply, (list, tuple)):
        return (MISS,) * count
    return tuple(MISS if element is None else HIT for element in reply)


def is_known(name: str) -> bool:
    """Whether the command table knows this command (used to validate user input)."""
    return name.upper() in _TABLE
