"""The report as one plain dict (the JSON schema, version 1); every output format renders it.

Building the formats from the same dict is what keeps the terminal table, the
Markdown and the HTML page saying exactly what the JSON says.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

from ..checks.targets import MISSED, NO_DATA, TargetResult
from ..metrics import KB
from ..observe.summary import PatternSummary, RunSummary

VERSION = 1
TOP_SHAPES = 10


def json_safe(value: Any) -> Any:
    """Values JSON can carry: non-finite floats become strings (``"inf"``), tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def pattern_stats(stats: PatternSummary) -> dict[str, Any]:
    """One pattern's (or key shape's) row of the report."""
    latency = stats.latency
    return {
        "reads": stats.reads,
        "hits": stats.hits,
        "misses": stats.misses,
        "hit_rate": None if stats.hit_rate is None else round(stats.hit_rate, 6),
        "writes": stats.writes,
        "deletes": stats.deletes,
        "errors": stats.errors,
        "commands": stats.command_count,
        "command_counts": dict(sorted(stats.commands.items(), key=lambda item: (-item[1], item[0]))),
        "latency_ms": {
            "count": latency.count,
            "p50": _rounded(latency.percentile_ms(0.50)),
            "p95": _rounded(latency.percentile_ms(0.95)),
            "p99": _rounded(latency.percentile_ms(0.99)),
            "max": _rounded(latency.max_ns / 1e6 if latency.count else None),
        },
        "latency_cdf": [list(point) for point in latency.cdf_ms()],
        "keys_written": stats.keys_written,
        "keys_without_ttl": stats.keys_without_ttl,
        "local_hits": stats.local_hits,
        "bytes_written": stats.bytes_written,
        "bytes_read": stats.bytes_read,
        "max_value_bytes": stats.max_value_bytes,
        "max_value_key": stats.max_value_key or None,
        "memory_kb": None if stats.memory_bytes is None else round(stats.memory_bytes / KB, 3),
        "memory_keys": stats.memory_keys,
        "memory_test": stats.memory_nodeid or None,
        "memory_source": _memory_source(stats),
    }


def _memory_source(stats: PatternSummary) -> str | None:
    if stats.memory_bytes is None:
        return None
    return "estimate" if stats.memory_estimated else "MEMORY USAGE"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def target_row(result: TargetResult) -> dict[str, Any]:
    return {
        "name": result.target,
        "pattern": result.pattern,
        "metric": result.metric,
        "value": json_safe(result.value),
        "limit": result.limit,
        "op": ">=" if result.minimum else "<=",
        "status": result.status,
        "value_text": result.value_text,
        "limit_text": result.limit_text,
        "detail": result.detail,
    }


def build_report(
    summary: RunSummary,
    results: Sequence[TargetResult],
    backend: str,
) -> dict[str, Any]:
    """The whole report; ``patterns`` holds ``"*"`` and every target pattern, ``key_shapes`` the busiest shapes."""
    shapes = sorted(summary.shapes.items(), key=lambda item: (-item[1].command_count, item[0]))[:TOP_SHAPES]
    missed = [result for result in results if result.status in (MISSED, NO_DATA)]
    return {
        "version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": backend,
        "redis_version": summary.server_version,
        "run": {
            "tests": summary.test_count,
            "workers": summary.workers,
            "targets": len(results),
            "targets_missed": len(missed),
            "crashed_workers": [{"worker": worker, "test": test} for worker, test in sorted(summary.crashes.items())],
        },
        "targets": [target_row(result) for result in results],
        "patterns": {pattern: pattern_stats(stats) for pattern, stats in summary.patterns.items()},
        "key_shapes": {shape: pattern_stats(stats) for shape, stats in shapes},
        "tests": json_safe(sorted(summary.tests, key=lambda test: test["nodeid"])),
        "measurements": [
            {"metric": point.metric, "value": json_safe(point.value), "nodeid": point.nodeid, "size": point.size}
            for point in sorted(summary.points, key=lambda point: (point.metric, point.nodeid, point.value))
        ],
    }
