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


def _second(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """BITOP operation destination key...: only the destination is written."""
    return args[2:3]


def _triples(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """JSON.MSET key path value [key path value ...]."""
    return args[1::3]


def word(arg: Any) -> str:
    """An option word as text, upper-cased (``b"store"`` -> ``"STORE"``)."""
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg).decode("latin-1").upper()
    return str(arg).upper()


# SORT options and how many arguments follow each; STORE's argument is the destination key.
_SORT_OPTION_ARGUMENTS = {"BY": 1, "LIMIT": 2, "GET": 1, "STORE": 1}


def _sort_destination(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """SORT key [BY p] [LIMIT o c] [GET p ...] [ASC|DESC] [ALPHA] [STORE destination]: the destination, if any."""
    index = 2
    while index < len(args):
        option = word(args[index])
        if option == "STORE":
            return args[index + 1 : index + 2]
        index += 1 + _SORT_OPTION_ARGUMENTS.get(option, 0)
    return ()


def _stream_if_created(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """XGROUP CREATE key group id [MKSTREAM]: the stream is created (written) only with MKSTREAM."""
    return args[1:2] if any(word(arg) == "MKSTREAM" for arg in args[4:]) else ()


def _geo_destination(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """GEORADIUS key lon lat radius unit [...] [STORE k | STOREDIST k] (GEORADIUSBYMEMBER: key member
    radius unit): the destination key written, if any; the options start after the unit."""
    first = 6 if command_name(args) == "GEORADIUS" else 5
    for index in range(first, len(args) - 1):
        if word(args[index]) in ("STORE", "STOREDIST"):
            return args[index + 1 : index + 2]
    return ()


# Reply interpretations. Each gets (keys, args, reply) and returns one outcome per key.
NIL = "nil"  # None reply = miss (GET, HGET, ZSCORE ...)
NIL_EACH = "nil_each"  # list reply, one element per key, None = miss (MGET)
NIL_FIELDS = "nil_fields"  # one key, list reply per field, None = miss (HMGET)
EMPTY = "empty"  # whole-key read, empty collection = miss (HGETALL, SMEMBERS)
COUNT = "count"  # integer = how many of the keys exist (EXISTS)
BOOL = "bool"  # 0/False = miss (HEXISTS, SISMEMBER)
WRITES = "write"
DEST_WRITE = "dest_write"  # the first key is written, the others are only read (SUNIONSTORE dest a b)
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
_define(NIL_EACH, _all_but_last, "JSON.MGET")
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
_define(WRITES, _triples, "JSON.MSET")
_define(WRITES, _first_two, "RENAME", "RENAMENX", "SMOVE", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "COPY")
_define(WRITES, _second, "BITOP")
_define(WRITES, _first, "ZRANGESTORE", "GEOSEARCHSTORE")
_define(WRITES, _sort_destination, "SORT")
_define(WRITES, _stream_if_created, "XGROUP CREATE")
_define(WRITES, _geo_destination, "GEORADIUS", "GEORADIUSBYMEMBER")
_define(DEST_WRITE, _dest_numkeys, "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE")
_define(DEST_WRITE, _all, "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE", "PFMERGE")
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
# Scripts that may write: the keys they declare count as written (for clean-up); ``*_RO`` variants cannot write.
WRITING_SCRIPTS = frozenset({"EVAL", "EVALSHA", "FCALL"})


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


def sent_key_text(key: Any) -> str:
    """A key as redis-py's encoder sends it, as lossless text: ``sent_key_bytes`` gives back the exact bytes.

    Unlike ``key_text`` (for display), bytes that are not UTF-8 survive the round trip, so
    clean-up deletes the real key; numbers are sent as their ``repr``, as redis-py does.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key).decode("utf-8", "surrogateescape")
    return repr(key)


def sent_key_bytes(text: str) -> bytes:
    """The bytes on the wire for a key from ``sent_key_text`` (UTF-8, as redis-py's default encoding)."""
    return text.encode("utf-8", "surrogateescape")


def _is_empty(reply: Any) -> bool:
    if reply is None:
        return True
    try:
        return len(reply) == 0
    except TypeError:
        return False


OutcomeOf = Callable[[Any], str]

# Kinds whose commands give every key the same outcome, read from the (non-error) reply alone.
_ONE_OUTCOME: dict[str, OutcomeOf] = {
    NIL: lambda reply: MISS if reply is None else HIT,
    EMPTY: lambda reply: MISS if _is_empty(reply) else HIT,
    BOOL: lambda reply: HIT if reply else MISS,
    WRITES: lambda reply: WRITE,
    DELETES: lambda reply: DELETE,
    OTHERS: lambda reply: OTHER,
}


def _same_outcome_for_each_key(extractor: KeyExtractor) -> dict[str, OutcomeOf]:
    """Commands whose keys ``extractor`` finds and that give every key one outcome from the reply."""
    return {
        name: _ONE_OUTCOME[kind] for name, (used, kind) in _TABLE.items() if used is extractor and kind in _ONE_OUTCOME
    }


# The fast path of ``classify_single``: commands whose only key is args[1] (GET k, SET k v EX 60) ...
_FIRST_KEY = _same_outcome_for_each_key(_first)
# ... and commands on any number of keys, when they name just one (DEL k, EXISTS k).
_SOLE_KEY = {**_same_outcome_for_each_key(_all), "EXISTS": lambda reply: _counted(reply, 1)[0]}

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


# Commands redis-py may send as two words (``execute_command("XGROUP", "CREATE", ...)``) that the
# table knows as one (``"XGROUP CREATE"``, as redis-py's own methods send it).
_TWO_WORD = frozenset({"XGROUP"})


def joined(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``("XGROUP", "CREATE", k, ...)`` -> ``("XGROUP CREATE", k, ...)``; anything else as it is."""
    if len(args) > 1 and command_name(args) in _TWO_WORD and isinstance(args[1], (str, bytes)):
        return (f"{command_name(args)} {word(args[1])}", *args[2:])
    return args


def _spec_of(args: tuple[Any, ...]) -> tuple[str, KeyExtractor, str]:
    try:
        return _spec(args[0]) if args else _UNKNOWN_SPEC
    except TypeError:  # an unhashable command name
        return (command_name(args), *_UNKNOWN)


def classify_single(args: tuple[Any, ...], reply: Any) -> tuple[str, str, str] | None:
    """(command, key, outcome) of a command on exactly one key with one outcome, else None.

    Nearly every command a cache sends is one of these (GET, SET, EXPIRE, DEL k, EXISTS k):
    two dict lookups decide it, with no tuples per key; ``classify`` handles the rest.
    Only canonical (upper-case ``str``) names take this path, as redis-py sends them.
    """
    name = args[0] if len(args) > 1 else None
    if type(name) is not str:
        return None
    outcome_of = _FIRST_KEY.get(name)
    if outcome_of is None:
        outcome_of = _SOLE_KEY.get(name) if len(args) == 2 else None
        if outcome_of is None:
            return None
    key = args[1]
    outcome = failed_outcome(reply) if isinstance(reply, BaseException) else outcome_of(reply)
    if not reply and outcome == WRITE and not_written(name, args, reply):
        outcome = OTHER
    return name, key if type(key) is str else key_text(key), outcome


def failed_outcome(exception: BaseException) -> str:
    """``error`` for a command that raised, except in a transaction that ``WATCH`` aborted: ``EXEC``
    answered nil (redis-py and valkey-py raise ``WatchError``), so its commands did not run and
    nothing failed (``other``, as a ``SET NX`` that did not set). Judged by class name: no import."""
    return OTHER if any(cls.__name__ == "WatchError" for cls in type(exception).__mro__) else ERROR


# Conditional writes whose reply says they did not happen (the NX/XX condition failed).
_SKIPPED_WHEN_FALSE = frozenset({"SETNX", "HSETNX", "MSETNX"})


def not_written(name: str, args: tuple[Any, ...], reply: Any) -> bool:
    """A conditional write that wrote nothing: ``SET ... NX`` answered nil (without ``GET``,
    whose nil means "there was no old value"), ``SETNX``/``HSETNX``/``MSETNX`` answered 0."""
    if name == "SET":
        return reply is None and not any(word(arg) == "GET" for arg in args[3:] if isinstance(arg, (str, bytes)))
    return name in _SKIPPED_WHEN_FALSE and reply is not None and not reply


def classify(args: tuple[Any, ...], reply: Any) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Return (command, keys, one outcome per key) for one command and its reply.

    ``reply`` is an exception instance when the command failed. Commands without
    keys get a single outcome and no key (``keys=()``, ``outcomes=(outcome,)``).
    """
    single = classify_single(args, reply)
    if single is not None:
        name, key, outcome = single
        return name, (key,), (outcome,)
    args = joined(args)
    name, extractor, kind = _spec_of(args)
    keys = tuple(key if type(key) is str else key_text(key) for key in extractor(args))
    if isinstance(reply, BaseException):
        return name, keys, (failed_outcome(reply),) * max(len(keys), 1)
    if kind == NIL_EACH:
        return name, keys, _per_element(reply, len(keys))
    if kind == NIL_FIELDS:
        fields = _per_element(reply, len(reply) if isinstance(reply, (list, tuple)) else 1)
        return name, keys * len(fields), fields
    if kind == COUNT:
        return name, keys, _counted(reply, len(keys))
    if kind == DEST_WRITE:
        return name, keys, ((WRITE,) + (OTHER,) * (len(keys) - 1)) if keys else (OTHER,)
    # A write that names no key (SORT without STORE, XGROUP CREATE without MKSTREAM) wrote nothing.
    skipped = kind == WRITES and (not keys or (not reply and not_written(name, args, reply)))
    outcome = OTHER if skipped else _ONE_OUTCOME[kind](reply)
    return name, keys, (outcome,) * max(len(keys), 1)


def _counted(reply: Any, count: int) -> tuple[str, ...]:
    """EXISTS k1 k2 ... returning n: which keys exist is unknown, so the first n count as hits."""
    present = reply if isinstance(reply, int) else 0
    return tuple(HIT if index < present else MISS for index in range(count))


def spec_name(args: tuple[Any, ...]) -> str:
    """The command's upper-case name, memoised by its raw form (cheaper than ``command_name`` per call)."""
    return _spec_of(args)[0]


def may_write(args: tuple[Any, ...]) -> bool:
    """False for a command that never writes a key (GET, TTL...): one memoised look-up, so a caller
    on the observation path can skip ``written_key_texts`` for most commands."""
    name, _, kind = _spec_of(args)
    return kind in (WRITES, DEST_WRITE) or name in WRITING_SCRIPTS or name in _TWO_WORD


def written_key_texts(args: tuple[Any, ...]) -> list[str]:
    """Keys a command may have created or changed, as ``sent_key_text``: what clean-up deletes.

    Whatever the reply: a command that failed (a timeout) may still have run on the server.
    Scripts count the keys they declare; a ``*STORE`` command only its destination.
    """
    args = joined(args)
    name, extractor, kind = _spec_of(args)
    if kind == WRITES or name in WRITING_SCRIPTS:
        keys = extractor(args)
    elif kind == DEST_WRITE:
        keys = extractor(args)[:1]
    else:
        return []
    return [sent_key_text(key) for key in keys]


def _per_element(reply: Any, count: int) -> tuple[str, ...]:
    if not isinstance(reply, (list, tuple)):
        return (MISS,) * count
    return tuple(MISS if element is None else HIT for element in reply)


# Every top-level command of Redis 7.0 (``COMMAND LIST``) and the ones later Redis versions
# added (hash-field TTLs, vector sets, ...), keyed or not: what a marker's command name may be.
_SERVER_COMMANDS = frozenset(
    {
        "ACL",
        "APPEND",
        "ASKING",
        "AUTH",
        "BGREWRITEAOF",
        "BGSAVE",
        "BITCOUNT",
        "BITFIELD",
        "BITFIELD_RO",
        "BITOP",
        "BITPOS",
        "BLMOVE",
        "BLMPOP",
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BZMPOP",
        "BZPOPMAX",
        "BZPOPMIN",
        "CLIENT",
        "CLUSTER",
        "COMMAND",
        "CONFIG",
        "COPY",
        "DBSIZE",
        "DEBUG",
        "DECR",
        "DECRBY",
        "DEL",
        "DISCARD",
        "DUMP",
        "ECHO",
        "EVAL",
        "EVALSHA",
        "EVALSHA_RO",
        "EVAL_RO",
        "EXEC",
        "EXISTS",
        "EXPIRE",
        "EXPIREAT",
        "EXPIRETIME",
        "FAILOVER",
        "FCALL",
        "FCALL_RO",
        "FLUSHALL",
        "FLUSHDB",
        "FUNCTION",
        "GEOADD",
        "GEODIST",
        "GEOHASH",
        "GEOPOS",
        "GEORADIUS",
        "GEORADIUSBYMEMBER",
        "GEORADIUSBYMEMBER_RO",
        "GEORADIUS_RO",
        "GEOSEARCH",
        "GEOSEARCHSTORE",
        "GET",
        "GETBIT",
        "GETDEL",
        "GETEX",
        "GETRANGE",
        "GETSET",
        "HDEL",
        "HELLO",
        "HEXISTS",
        "HEXPIRE",
        "HEXPIREAT",
        "HEXPIRETIME",
        "HGET",
        "HGETALL",
        "HGETDEL",
        "HGETEX",
        "HINCRBY",
        "HINCRBYFLOAT",
        "HKEYS",
        "HLEN",
        "HMGET",
        "HMSET",
        "HPERSIST",
        "HPEXPIRE",
        "HPEXPIREAT",
        "HPEXPIRETIME",
        "HPTTL",
        "HRANDFIELD",
        "HSCAN",
        "HSET",
        "HSETEX",
        "HSETNX",
        "HSTRLEN",
        "HTTL",
        "HVALS",
        "INCR",
        "INCRBY",
        "INCRBYFLOAT",
        "INFO",
        "KEYS",
        "LASTSAVE",
        "LATENCY",
        "LCS",
        "LINDEX",
        "LINSERT",
        "LLEN",
        "LMOVE",
        "LMPOP",
        "LOLWUT",
        "LPOP",
        "LPOS",
        "LPUSH",
        "LPUSHX",
        "LRANGE",
        "LREM",
        "LSET",
        "LTRIM",
        "MEMORY",
        "MGET",
        "MIGRATE",
        "MODULE",
        "MONITOR",
        "MOVE",
        "MSET",
        "MSETNX",
        "MULTI",
        "OBJECT",
        "PERSIST",
        "PEXPIRE",
        "PEXPIREAT",
        "PEXPIRETIME",
        "PFADD",
        "PFCOUNT",
        "PFDEBUG",
        "PFMERGE",
        "PFSELFTEST",
        "PING",
        "PSETEX",
        "PSUBSCRIBE",
        "PSYNC",
        "PTTL",
        "PUBLISH",
        "PUBSUB",
        "PUNSUBSCRIBE",
        "QUIT",
        "RANDOMKEY",
        "READONLY",
        "READWRITE",
        "RENAME",
        "RENAMENX",
        "REPLCONF",
        "REPLICAOF",
        "RESET",
        "RESTORE",
        "RESTORE-ASKING",
        "ROLE",
        "RPOP",
        "RPOPLPUSH",
        "RPUSH",
        "RPUSHX",
        "SADD",
        "SAVE",
        "SCAN",
        "SCARD",
        "SCRIPT",
        "SDIFF",
        "SDIFFSTORE",
        "SELECT",
        "SET",
        "SETBIT",
        "SETEX",
        "SETNX",
        "SETRANGE",
        "SHUTDOWN",
        "SINTER",
        "SINTERCARD",
        "SINTERSTORE",
        "SISMEMBER",
        "SLAVEOF",
        "SLOWLOG",
        "SMEMBERS",
        "SMISMEMBER",
        "SMOVE",
        "SORT",
        "SORT_RO",
        "SPOP",
        "SPUBLISH",
        "SRANDMEMBER",
        "SREM",
        "SSCAN",
        "SSUBSCRIBE",
        "STRLEN",
        "SUBSCRIBE",
        "SUBSTR",
        "SUNION",
        "SUNIONSTORE",
        "SUNSUBSCRIBE",
        "SWAPDB",
        "SYNC",
        "TIME",
        "TOUCH",
        "TTL",
        "TYPE",
        "UNLINK",
        "UNSUBSCRIBE",
        "UNWATCH",
        "VADD",
        "VCARD",
        "VDIM",
        "VEMB",
        "VGETATTR",
        "VINFO",
        "VLINKS",
        "VRANDMEMBER",
        "VREM",
        "VSETATTR",
        "VSIM",
        "WAIT",
        "WAITAOF",
        "WATCH",
        "XACK",
        "XACKDEL",
        "XADD",
        "XAUTOCLAIM",
        "XCLAIM",
        "XDEL",
        "XDELEX",
        "XGROUP",
        "XINFO",
        "XLEN",
        "XPENDING",
        "XRANGE",
        "XREAD",
        "XREADGROUP",
        "XREVRANGE",
        "XSETID",
        "XTRIM",
        "ZADD",
        "ZCARD",
        "ZCOUNT",
        "ZDIFF",
        "ZDIFFSTORE",
        "ZINCRBY",
        "ZINTER",
        "ZINTERCARD",
        "ZINTERSTORE",
        "ZLEXCOUNT",
        "ZMPOP",
        "ZMSCORE",
        "ZPOPMAX",
        "ZPOPMIN",
        "ZRANDMEMBER",
        "ZRANGE",
        "ZRANGEBYLEX",
        "ZRANGEBYSCORE",
        "ZRANGESTORE",
        "ZRANK",
        "ZREM",
        "ZREMRANGEBYLEX",
        "ZREMRANGEBYRANK",
        "ZREMRANGEBYSCORE",
        "ZREVRANGE",
        "ZREVRANGEBYLEX",
        "ZREVRANGEBYSCORE",
        "ZREVRANK",
        "ZSCAN",
        "ZSCORE",
        "ZUNION",
        "ZUNIONSTORE",
    }
)
COMMAND_NAMES = tuple(sorted(_SERVER_COMMANDS | {name.split(" ")[0] for name in _TABLE}))
_KNOWN = frozenset(COMMAND_NAMES)


def is_known(name: str) -> bool:
    """Whether ``name`` (``GET``, ``CONFIG SET``, ``FT.SEARCH``) is a Redis command: its first word in
    ``COMMAND_NAMES``, or a module command (a dot in the name; modules cannot be listed). For marker
    arguments (``cache_forbid("FLUSHAL")`` is a typo, not a command nobody runs)."""
    upper = name.upper()
    return upper in _TABLE or upper.split(" ")[0] in _KNOWN or "." in upper.split(" ")[0]
