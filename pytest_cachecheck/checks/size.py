"""``@pytest.mark.cache_size(*, max_value_bytes=None, memory_kb=None, pattern="*")``: counts, not timings.

``max_value_bytes`` bounds the largest value one write stored under a matching key in the
test (client-side, from the observed commands, every backend; ``observe.sizes`` says what
a value's bytes are). ``memory_kb`` bounds the memory of the matching keys when the test
body ended (``observe.memory``: ``MEMORY USAGE`` on real servers, the fake server's
key + value estimate on ``fake``, and the message says which).
"""

from __future__ import annotations

from typing import Any

from ..metrics import KB, format_bytes
from ..observe.aggregate import compute_stats
from ..observe.commands import WRITE
from ..observe.memory import MemoryAtEnd
from ..observe.patterns import MATCH_ALL, matcher, shown_key
from .arguments import MarkerSpec, Param
from .base import FAILED, PASSED, Check, CheckResult, TestContext

_EXAMPLES = 3


def _one_limit(bound: dict[str, Any]) -> str | None:
    if bound["max_value_bytes"] is None and bound["memory_kb"] is None:
        return "give max_value_bytes=, memory_kb= or both (e.g. cache_size(max_value_bytes=65536))"
    return None


SPEC = MarkerSpec(
    name="cache_size",
    params=(
        Param("max_value_bytes", "int", default=None, low=0),
        Param("memory_kb", "number", default=None, low=0, low_open=True),
        Param("pattern", "pattern", default=MATCH_ALL),
    ),
    help="the largest value written to a key matching pattern is at most max_value_bytes; the memory of the "
    "matching keys at the end of the test (MEMORY USAGE; an estimate on fake) is at most memory_kb",
    extra_check=_one_limit,
)


def _largest_writes(context: TestContext, pattern: str, above: int) -> list[tuple[str, str, int]]:
    """(key, command, value bytes) of the writes above ``above``, biggest first."""
    match = matcher(pattern)
    found = []
    for event in context.monitor.events:
        if WRITE not in event.outcomes:
            continue
        for key, outcome, size in zip(event.keys, event.outcomes, event.value_sizes):
            if outcome == WRITE and size > above and match(key):
                found.append((key, event.command, size))
    return sorted(found, key=lambda item: (-item[2], item[0]))


def _check_values(context: TestContext, limit: int, pattern: str, where: str, metrics: dict[str, Any]) -> str | None:
    stats = compute_stats(context.monitor.events, pattern)
    metrics.update(
        max_value_bytes=stats.max_value_bytes, bytes_written=stats.bytes_written, bytes_read=stats.bytes_read
    )
    if stats.max_value_bytes is None:
        return (
            f"no writes of {where} were observed in this test, so no value size could be checked; "
            "write through a redis-py client during the test"
        )
    if stats.max_value_bytes <= limit:
        return None
    above = _largest_writes(context, pattern, limit)
    shown = ", ".join(f"{shown_key(key)} ({format_bytes(size)}, {command})" for key, command, size in above[:_EXAMPLES])
    more = f" and {len(above) - _EXAMPLES} more" if len(above) > _EXAMPLES else ""
    return (
        f"the largest value written to {where} is {stats.max_value_bytes} bytes, above max_value_bytes={limit}; "
        f"{len(above)} write(s) above it: {shown}{more}"
    )


def _check_memory(
    context: TestContext, limit_kb: float, pattern: str, where: str, metrics: dict[str, Any]
) -> str | None:
    readings: list[MemoryAtEnd] = context.data.get("memory_at_end") or []
    if not readings:
        if context.backend is None:
            return (
                "the test never used the plugin's Redis (cache_redis, cache_url, cache_server), so the memory of "
                f"{where} could not be read"
            )
        return f"the server refused MEMORY USAGE (or SCAN), so the memory of {where} could not be read"
    memory = readings[-1]
    size, keys = memory.of(pattern)
    metrics.update(memory_kb=round(size / KB, 3), memory_keys=keys, memory_source=memory.source)
    if not keys:
        return (
            f"no {where} were in the database at the end of the test, so their memory could not be measured; "
            "leave the cached keys in place until the test ends"
        )
    if size <= limit_kb * KB:
        return None
    largest = ", ".join(f"{shown_key(key)} ({format_bytes(bytes_)})" for key, bytes_ in memory.largest(pattern))
    return (
        f"the {keys} {where} at the end of the test use {size / KB:.1f} KB ({memory.source}), "
        f"above memory_kb={limit_kb:g}; largest: {largest}"
    )


def evaluate(context: TestContext, params: dict[str, Any]) -> CheckResult:
    pattern = params["pattern"]
    where = f"keys matching {pattern!r}" if pattern != MATCH_ALL else "keys"
    metrics: dict[str, Any] = {}
    problems = []
    if params["max_value_bytes"] is not None:
        problems.append(_check_values(context, params["max_value_bytes"], pattern, where, metrics))
    if params["memory_kb"] is not None:
        problems.append(_check_memory(context, params["memory_kb"], pattern, where, metrics))
    failed = [problem for problem in problems if problem]
    if failed:
        return CheckResult(SPEC.name, FAILED, "cache_size: " + "; ".join(failed), metrics)
    parts = []
    if metrics.get("max_value_bytes") is not None:
        parts.append(f"largest value {metrics['max_value_bytes']} bytes <= {params['max_value_bytes']}")
    if metrics.get("memory_kb") is not None:
        parts.append(f"memory {metrics['memory_kb']:.1f} KB <= {params['memory_kb']:g} KB ({metrics['memory_source']})")
    return CheckResult(SPEC.name, PASSED, f"cache_size: {'; '.join(parts)} for {where}", metrics)


CHECK = Check(SPEC, evaluate)
