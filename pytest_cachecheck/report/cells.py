"""What every renderer (terminal, Markdown, HTML) shows alike: a pattern row's cells, a crashed worker's note.

One home for these, so the formats say the same thing in the same words; numbers are
formatted by the metric registry's formatters (``metrics.format_ms``, ``format_percent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..metrics import format_ms, format_percent


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


def crash_note(crash: dict[str, Any], code: Callable[[str], str] = str) -> str:
    """What a crashed xdist worker cost the report (``run.crashed_workers``), alike in every format."""
    worker = code(crash["worker"])
    if crash["test"] is None:
        return f"worker {worker} crashed between tests; the observations of its finished tests are all in"
    return f"worker {worker} crashed while running {code(crash['test'])}; its observations of that test are missing"
