"""``@pytest.mark.cache_ttl(*, min_s=None, max_s=None, pattern="*", required=True)``.

Reads the real TTLs from the server when the test body has ended (before the per-test
clean-up). On backends the plugin owns, every key in the database then is the test's and
is judged (``observe.expiry.read_keys_at_end``: keys made inside scripts, by clients the
plugin does not observe...); elsewhere (``url``), every key the test wrote. TTLs set
inside Lua scripts, by ``EXPIRE`` after the write, or by a library's own options all count. The TTL a key was given is
estimated as the remaining PTTL plus the time since it was set: at the earliest when the
last command that can set a TTL began (``SET``, ``EXPIRE``, a script ...; a later ``HSET``
keeps the TTL), at the latest when the last write ended. The bounds are checked with that
uncertainty in the key's favour, so a slow test never fails ``min_s`` just because time
passed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from ..observe.commands import WRITE
from ..observe.events import Event
from ..observe.expiry import GIVES_TTL, KeysAtEnd
from ..observe.patterns import MATCH_ALL, key_shape, matcher, shown_key
from ..own_commands import unobserved
from .arguments import MarkerSpec, Param
from .base import FAILED, INCONCLUSIVE, PASSED, Check, CheckResult, TestContext

_SCRIPTS = ("EVAL", "EVALSHA", "FCALL")  # not the *_RO variants: they cannot write
_SETS_TTL = frozenset({"SET", "GETEX", "RESTORE", *GIVES_TTL, *_SCRIPTS})
_BATCH = 1000
_EXAMPLES = 5
_CLOCK_SLACK_MS = 2  # the server reads its clock in whole milliseconds at the write and at PTTL
_SHOWN_DECIMALS = 3  # milliseconds: what PTTL counts in
NO_TTL = -1
GONE = -2


def _bounds_in_order(bound: dict[str, Any]) -> str | None:
    low, high = bound["min_s"], bound["max_s"]
    if low is not None and high is not None and low > high:
        return f"'min_s' ({low:g}) must not be greater than 'max_s' ({high:g})"
    return None


SPEC = MarkerSpec(
    name="cache_ttl",
    params=(
        Param("min_s", "number", default=None, low=0),
        Param("max_s", "number", default=None, low=0, low_open=True),
        Param("pattern", "pattern", default=MATCH_ALL),
        Param("required", "bool", default=True),
    ),
    help="every key the test wrote (matching pattern) has a TTL (unless required=False) within [min_s, max_s], "
    "read from the server at the end of the test",
    extra_check=_bounds_in_order,
)


@dataclass(frozen=True)
class WrittenKey:
    key: str
    ttl_set_after_ns: int  # start of the last command that could have set its TTL (else its first write)
    write_end_ns: int  # end of its last write: the TTL was set by then


def written_keys(events: Sequence[Event], pattern: str) -> list[WrittenKey]:
    """Keys written (or passed to a writing script) in the test, in the order last written."""
    match = matcher(pattern)
    ends = _ends(events)
    last_write_end: dict[str, int] = {}
    ttl_set_after: dict[str, int] = {}
    for event, end in zip(events, ends):
        script = event.command in _SCRIPTS
        for key, outcome in zip(event.keys, event.outcomes):
            if not match(key):
                continue
            writes = script or outcome == WRITE
            if event.command in _SETS_TTL or (writes and key not in ttl_set_after):
                ttl_set_after[key] = event.start_ns
            if writes:
                last_write_end.pop(key, None)
                last_write_end[key] = end
    return [WrittenKey(key, ttl_set_after[key], end) for key, end in last_write_end.items()]


def _ends(events: Sequence[Event]) -> list[int]:
    """When each command was surely done: a pipelined one only when its whole round trip ended.

    A pipeline's commands share its start and split its duration equally, so their own
    ``start + duration`` falls inside the round trip, before the server may have run them.
    """
    round_trip_end: dict[int, int] = {}
    for event in events:
        if event.pipeline_id > 0:
            previous = round_trip_end.get(event.pipeline_id, event.start_ns)
            round_trip_end[event.pipeline_id] = previous + event.duration_ns
    return [
        round_trip_end[event.pipeline_id] if event.pipeline_id > 0 else event.start_ns + event.duration_ns
        for event in events
    ]


@dataclass(frozen=True)
class KeyTtl:
    key: str
    pttl_ms: int
    shortest_s: float  # the TTL it was given, at least
    longest_s: float  # ... and at most


def read_ttls(client: Any, keys: Sequence[WrittenKey]) -> list[KeyTtl]:
    """PTTL of every key, pipelined; the read's interval bounds how long ago each TTL was set."""
    found = []
    with unobserved():
        for index in range(0, len(keys), _BATCH):
            chunk = keys[index : index + _BATCH]
            pipe = client.pipeline(transaction=False)
            for written in chunk:
                pipe.pttl(written.key.encode("utf-8", "surrogateescape"))
            read_start = perf_counter_ns()
            replies = pipe.execute()
            read_end = perf_counter_ns()
            for written, pttl in zip(chunk, replies):
                pttl = int(pttl)
                found.append(
                    KeyTtl(
                        written.key,
                        pttl,
                        (pttl - _CLOCK_SLACK_MS + (read_start - written.write_end_ns) / 1e6) / 1000,
                        (pttl + _CLOCK_SLACK_MS + (read_end - written.ttl_set_after_ns) / 1e6) / 1000,
                    )
                )
    return found


def given_ttl(ttl: KeyTtl) -> str:
    """The TTL a key was given, as the fewest decimals that lie within what was measured
    (``[shortest_s, longest_s]``): ``3600`` for ``EX 3600``, however slow the write and the read
    were, where either bound alone (``3599.993``) moves with the machine's speed. Every figure in
    the interval is on the same side of the bound the key missed, so the one shown is too. The
    interval is at least ``2 * _CLOCK_SLACK_MS`` wide, so milliseconds always find a figure in it."""
    for decimals in range(_SHOWN_DECIMALS):
        scale = 10**decimals
        candidate = math.ceil(ttl.shortest_s * scale) / scale
        if candidate <= ttl.longest_s:
            return f"{candidate:.{decimals}f}"
    return f"{math.ceil(ttl.shortest_s * 10**_SHOWN_DECIMALS) / 10**_SHOWN_DECIMALS:.{_SHOWN_DECIMALS}f}"


def _listing(keys: Sequence[str]) -> str:
    shown = ", ".join(shown_key(key) for key in keys[:_EXAMPLES])
    more = f" and {len(keys) - _EXAMPLES} more" if len(keys) > _EXAMPLES else ""
    shapes = Counter(key_shape(key) for key in keys)
    by_shape = f" (by shape: {', '.join(f'{shape} ({count})' for shape, count in shapes.most_common(3))})"
    return shown + more + (by_shape if len(keys) > _EXAMPLES else "")


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    pattern = params["pattern"]
    where = f"keys matching {pattern!r}" if pattern != MATCH_ALL else "keys"
    keys = written_keys(context.monitor.events, pattern)
    at_end: list[KeysAtEnd] = context.data.get("keys_at_end") or []
    if at_end:
        return _judge(ttls_at_end(at_end[-1], keys, pattern), params, where)
    if not keys:
        return CheckResult(
            SPEC.name, FAILED, f"cache_ttl: no writes of {where} were observed in this test, so no TTL could be checked"
        )
    if context.backend is None:
        return CheckResult(
            SPEC.name,
            FAILED,
            "cache_ttl: the test wrote keys but never used the plugin's Redis (cache_redis, cache_url, "
            "cache_server), so their TTLs cannot be read",
        )
    client = context.backend.client()
    try:
        ttls = read_ttls(client, keys)
    finally:
        with unobserved():
            client.close()
    result = _judge(ttls, params, where)
    scripts = sum(event.command in _SCRIPTS for event in context.monitor.events)
    if result.status == PASSED and scripts:
        return CheckResult(
            SPEC.name,
            INCONCLUSIVE,
            f"{result.message}, but {scripts} Lua script or function call(s) ran and keys they made without "
            "declaring them in KEYS are not seen on this backend; run the test on a backend the plugin owns "
            "(fake, server, docker, cluster), where every key left at the end of the test is judged",
            result.metrics,
        )
    return result


def ttls_at_end(snapshot: KeysAtEnd, written: Sequence[WrittenKey], pattern: str) -> list[KeyTtl]:
    """Every key matching ``pattern`` in the database at the end of the body, dated by its
    observed writes; a key no client wrote (a script made it) is dated by the body's start
    and the read, the widest interval, in the key's favour."""
    match = matcher(pattern)
    dated = {key.key: key for key in written}
    keys = [*dated, *sorted(key for key in snapshot.pttl_ms if key not in dated)]
    found = []
    for key in keys:
        if not match(key):
            continue
        pttl = snapshot.pttl_ms.get(key, GONE)
        seen = dated.get(key)
        write_end = seen.write_end_ns if seen is not None else snapshot.read_start_ns
        ttl_set_after = seen.ttl_set_after_ns if seen is not None else snapshot.body_start_ns
        found.append(
            KeyTtl(
                key,
                pttl,
                (pttl - _CLOCK_SLACK_MS + (snapshot.read_start_ns - write_end) / 1e6) / 1000,
                (pttl + _CLOCK_SLACK_MS + (snapshot.read_end_ns - ttl_set_after) / 1e6) / 1000,
            )
        )
    return found


def _judge(ttls: Sequence[KeyTtl], params: dict[str, Any], where: str) -> CheckResult:
    low, high, required = params["min_s"], params["max_s"], params["required"]
    if not ttls:
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_ttl: no writes of {where} were observed in this test and none were in the database at its end, "
            "so no TTL could be checked",
        )
    present = [ttl for ttl in ttls if ttl.pttl_ms != GONE]
    if not present:
        return CheckResult(
            SPEC.name,
            FAILED,
            f"cache_ttl: none of the {len(ttls)} {where} written in this test was left in the plugin's Redis at "
            "its end (deleted, expired, or written to another server), so no TTL could be checked; write through "
            "cache_redis or cache_url",
            {"keys_checked": 0, "keys_gone": len(ttls)},
        )
    without = [ttl.key for ttl in present if ttl.pttl_ms == NO_TTL]
    timed = [ttl for ttl in present if ttl.pttl_ms >= 0]
    too_short = [ttl for ttl in timed if low is not None and ttl.longest_s < low]
    too_long = [ttl for ttl in timed if high is not None and ttl.shortest_s > high]
    metrics = {
        "keys_checked": len(present),
        "keys_without_ttl": len(without),
        "keys_gone": len(ttls) - len(present),
        "ttl_min_s": min((ttl.shortest_s for ttl in timed), default=None),
        "ttl_max_s": max((ttl.longest_s for ttl in timed), default=None),
    }
    problems = []
    if required and without:
        problems.append(
            f"{len(without)} of {len(present)} {where} written in this test have no TTL: {_listing(without)}"
        )
    if too_short:
        problems.append(
            f"{len(too_short)} key(s) have a TTL below min_s={low:g}: "
            + _listing([f"{shown_key(ttl.key)} ({given_ttl(ttl)} s)" for ttl in too_short])
        )
    if too_long:
        problems.append(
            f"{len(too_long)} key(s) have a TTL above max_s={high:g}: "
            + _listing([f"{shown_key(ttl.key)} ({given_ttl(ttl)} s)" for ttl in too_long])
        )
    if problems:
        return CheckResult(SPEC.name, FAILED, "cache_ttl: " + "; ".join(problems), metrics)
    return CheckResult(SPEC.name, PASSED, f"cache_ttl: {len(present)} {where} have TTLs within bounds", metrics)


CHECK = Check(SPEC, evaluate)
