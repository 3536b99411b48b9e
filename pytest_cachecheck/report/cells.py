"""What every renderer (terminal, Markdown, HTML) shows alike: a pattern row's cells, a crashed worker's note.

One home for these, so the formats say the same thing in the same words; numbers are
formatted by the metric registry's formatters (``metrics.format_ms``, ``format_percent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..metrics import KB, format_bytes, format_ms, format_percent


def pattern_cells(stats: dict[str, Any]) -> list[str]:
    """A per-pattern row's numbers (reads, hits, misses, hit%, p50, p95, p99, commands), alike in every format."""
    latency = stats["latency_ms"]
    return [
        str(stats["reads"]),
        str(stats["hits"]),
        str(stats["misses"]),
        format_percent(stats["hit_rate"]),
        format_ms(latency["p50"]),
        format_ms(latency["p95"]),
        format_ms(latency["p99"]),
        str(stats["commands"]),
    ]


SIZE_HEADER = ("written", "read", "max value", "memory", "local hits")


def size_cells(stats: dict[str, Any]) -> list[str]:
    """A per-pattern row's value bytes (written, read, the biggest value), memory at the end of the
    largest test (``~`` marks the fake backend's estimate) and hits the client's own cache answered."""
    memory = stats["memory_kb"]
    shown_memory = (
        "-" if memory is None else ("~" if stats["memory_source"] == "estimate" else "") + format_bytes(memory * KB)
    )
    return [
        format_bytes(stats["bytes_written"]),
        format_bytes(stats["bytes_read"]),
        "-" if stats["max_value_bytes"] is None else format_bytes(stats["max_value_bytes"]),
        shown_memory,
        str(stats["local_hits"]),
    ]


def has_sizes(patterns: dict[str, dict[str, Any]]) -> bool:
    """Whether any row has value bytes, memory or local hits to show."""
    return any(
        stats["bytes_written"] or stats["bytes_read"] or stats["memory_kb"] is not None or stats["local_hits"]
        for stats in patterns.values()
    )


def crash_note(crash: dict[str, Any], code: Callable[[str], str] = str) -> str:
    """What a crashed xdist worker cost the report (``run.crashed_workers``), alike in every format."""
    worker = code(crash["worker"])
    if crash["test"] is None:
        return f"worker {worker} crashed between tests; the observations of its finished tests are all in"
    return f"worker {worker} crashed while running {code(crash['test'])}; its observations of that test are missing"
