"""The report as Markdown tables (``--cache-report run.md`` and ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..checks.targets import MET, MISSED
from .cells import SIZE_HEADER, crash_note, has_sizes, pattern_cells, size_cells

STATUS_ICON = {MET: "✅", MISSED: "❌"}
NO_DATA_ICON = "⚠️"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: range | None = None) -> list[str]:
    """A GitHub-flavoured Markdown table; ``numeric`` columns (default: all but the first) are right-aligned."""
    numeric = range(1, len(header)) if numeric is None else numeric
    align = ["---:" if index in numeric else "---" for index in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows)
    return lines


def pattern_rows(patterns: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [[f"`{pattern}`", *pattern_cells(stats)] for pattern, stats in patterns.items()]


PATTERN_HEADER = ("Pattern", "Reads", "Hits", "Misses", "Hit rate", "p50 ms", "p95 ms", "p99 ms", "Commands")
TARGET_HEADER = ("Name", "Pattern", "Metric", "Value", "Target", "Status")


def render(report: dict[str, Any]) -> str:
    """The whole report; the numbers are the JSON report's, formatted as the terminal shows them."""
    run = report["run"]
    server = f", {report['redis_version']}" if report["redis_version"] else ""
    lines = [
        "## cachecheck report",
        "",
        f"Backend `{report['backend']}`{server}; {run['tests']} tests observed; "
        f"{sum(row['status'] == MET for row in report['targets'])} of {run['targets']} targets met.",
    ]
    for crash in run["crashed_workers"]:
        note = crash_note(crash, code=lambda text: f"`{text}`")
        lines += ["", f"{NO_DATA_ICON} {note[:1].upper()}{note[1:]}."]
    if report["targets"]:
        rows = [
            [
                row["name"],
                f"`{row['pattern']}`",
                row["metric"],
                row["value_text"],
                row["limit_text"],
                f"{STATUS_ICON.get(row['status'], NO_DATA_ICON)} {row['status']}",
            ]
            for row in report["targets"]
        ]
        lines += ["", "### Targets", "", *table(TARGET_HEADER, rows, numeric=range(3, 5))]
        notes = [row for row in report["targets"] if row["status"] != MET and row["detail"]]
        if notes:
            lines += [""] + [f"- **{row['name']} {row['metric']}**: {_cell(row['detail'])}" for row in notes]
    lines += ["", "### Per-pattern stats", "", *table(PATTERN_HEADER, pattern_rows(report["patterns"]))]
    if has_sizes(report["patterns"]):
        rows = [[f"`{pattern}`", *size_cells(stats)] for pattern, stats in report["patterns"].items()]
        header = ("Pattern", *(name.capitalize() for name in SIZE_HEADER))
        lines += ["", "### Values and memory per pattern", "", *table(header, rows)]
        if any(stats["memory_source"] == "estimate" for stats in report["patterns"].values()):
            lines += ["", "~ memory estimated by the fake backend (key + value bytes); `MEMORY USAGE` on real servers"]
    if report["key_shapes"]:
        header = ("Key shape", *PATTERN_HEADER[1:])
        lines += ["", "### Busiest key shapes", "", *table(header, pattern_rows(report["key_shapes"]))]
    failed = [
        [f"`{test['nodeid']}`", check["marker"], check["message"].splitlines()[0]]
        for test in report["tests"]
        for check in test["checks"]
        if check["status"] == "failed"
    ]
    if failed:
        lines += ["", "### Failed cache checks", "", *table(("Test", "Check", "Message"), failed, numeric=range(0))]
    return "\n".join(lines) + "\n"
