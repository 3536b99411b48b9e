"""The ``cachecheck`` section of pytest's terminal summary, at most 80 columns wide.

Colour comes from pytest's terminal writer markup, which emits escape codes only on
a TTY (or with ``--color=yes``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any, Protocol

from ..checks.targets import INCONCLUSIVE, MET, MISSED, NO_DATA, NOT_ENFORCED
from ..metrics import format_ms as ms
from ..metrics import format_percent as percent
from .cells import SIZE_HEADER, crash_note, has_sizes, pattern_cells, size_cells

WIDTH = 80
_STATUS_MARKUP = {MET: {"green": True}, MISSED: {"red": True, "bold": True}}
_NO_DATA_MARKUP = {"yellow": True, "bold": True}


class TerminalWriter(Protocol):
    """The part of pytest's ``TerminalReporter`` used here."""

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str | bytes, **markup: bool) -> None: ...

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None: ...


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def _columns(rows: Sequence[Sequence[str]], first_max: int) -> list[int]:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    rest = sum(widths[1:]) + 2 * (len(widths) - 1)
    widths[0] = max(8, min(widths[0], first_max, WIDTH - rest))
    return widths


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    first = _fit(cells[0], widths[0]).ljust(widths[0])
    rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
    return "  ".join([first, *rest]).rstrip()


def write_targets(tr: TerminalWriter, targets: Sequence[dict[str, Any]]) -> None:
    """Metric | Value | Target | Status, one line per limit of each target."""
    header = ("Metric", "Value", "Target", "Status")
    rows = [(f"{row['name']}: {row['metric']}", row["value_text"], row["limit_text"], row["status"]) for row in targets]
    widths = _columns([header, *rows], first_max=40)
    tr.write_line(_line(header, widths), bold=True)
    for row, cells in zip(targets, rows):
        tr.write(_line(cells[:3], widths[:3]) + "  ")
        tr.write(cells[3].rjust(widths[3]), **_STATUS_MARKUP.get(row["status"], _NO_DATA_MARKUP))
        tr.write_line("")


def write_patterns(tr: TerminalWriter, patterns: dict[str, dict[str, Any]], title: str) -> None:
    """Reads, hits, misses, hit rate, latency percentiles and commands per pattern."""
    header = (title, "reads", "hits", "misses", "hit%", "p50ms", "p95ms", "p99ms", "cmds")
    rows = [(pattern, *pattern_cells(stats)) for pattern, stats in patterns.items()]
    widths = _columns([header, *rows], first_max=30)
    tr.write_line(_line(header, widths), bold=True)
    for cells in rows:
        tr.write_line(_line(cells, widths))


def write_sizes(tr: TerminalWriter, patterns: dict[str, dict[str, Any]], title: str) -> None:
    """Value bytes, memory and local hits per pattern; a note when memory is the fake's estimate."""
    header = (title, *SIZE_HEADER)
    rows = [(pattern, *size_cells(stats)) for pattern, stats in patterns.items()]
    widths = _columns([header, *rows], first_max=30)
    tr.write_line(_line(header, widths), bold=True)
    for cells in rows:
        tr.write_line(_line(cells, widths))
    if any(stats["memory_source"] == "estimate" for stats in patterns.values()):
        tr.write_line("~ memory estimated on fake (key + value bytes); MEMORY USAGE on real servers")


def write_failed_checks(tr: TerminalWriter, tests: Sequence[dict[str, Any]]) -> None:
    """Per-test cache metrics of the tests whose marker checks failed."""
    failing = [test for test in tests if any(check["status"] == "failed" for check in test["checks"])]
    if not failing:
        return
    tr.write_line("")
    tr.write_line("failed cache checks:", bold=True)
    for test in failing:
        tr.write_line(_fit(test["nodeid"], WIDTH))
        metrics = test["metrics"]
        figures = [f"{metrics['commands']} commands", f"{metrics['reads']} reads"]
        if metrics.get("hit_rate") is not None:
            figures.append(f"hit rate {percent(metrics['hit_rate'])}")
        if metrics.get("p99_ms") is not None:
            figures.append(f"p99 {ms(metrics['p99_ms'])} ms")
        tr.write_line("    " + ", ".join(figures))
        for check in test["checks"]:
            if check["status"] == "failed":
                message = check["message"].splitlines()[0]
                if not message.startswith(check["marker"]):
                    message = f"{check['marker']}: {message}"
                tr.write_line("    " + _fit(message, WIDTH - 4))


def write_section(tr: TerminalWriter, report: dict[str, Any], written: Sequence[str], seconds: float) -> None:
    """The whole section: targets, per-pattern stats, key shapes, failed checks, report files."""
    tr.write_sep("-", "cachecheck")
    run = report["run"]
    server = f" ({report['redis_version']})" if report["redis_version"] else ""
    workers = f" on {run['workers']} workers" if run["workers"] > 1 else ""
    tests = f"{run['tests']} test{'' if run['tests'] == 1 else 's'}"
    tr.write_line(f"backend {report['backend']}{server}; {tests} observed{workers}")
    if report["targets"]:
        tr.write_line("")
        write_targets(tr, report["targets"])
    if report["patterns"]["*"]["commands"]:
        tr.write_line("")
        write_patterns(tr, report["patterns"], "pattern")
    if has_sizes(report["patterns"]):
        tr.write_line("")
        write_sizes(tr, report["patterns"], "pattern")
    if report["key_shapes"]:
        tr.write_line("")
        write_patterns(tr, report["key_shapes"], "key shape")
    write_failed_checks(tr, report["tests"])
    if written:
        tr.write_line("")
        tr.write_line(f"cache report written in {seconds:.3f} s: {', '.join(written)}")


def write_verdict(
    tr: TerminalWriter,
    targets: Sequence[dict[str, Any]],
    problems: Sequence[str] = (),
    crashes: Sequence[dict[str, Any]] = (),
) -> None:
    """The last lines of the run: reports not written, crashed workers, missed targets, or that all were met."""
    for problem in problems:
        tr.write_line(f"cachecheck: {problem}", red=True, bold=True)
    for crash in crashes:
        tr.write_line(f"cachecheck: {crash_note(crash)}", **_NO_DATA_MARKUP)
    if not targets:
        return
    missed = [row for row in targets if row["status"] in (MISSED, NO_DATA)]
    unclear = [row for row in targets if row["status"] == INCONCLUSIVE]
    unenforced = [row for row in targets if row["status"] == NOT_ENFORCED]
    if not missed and not unclear and not unenforced:
        tr.write_line(f"cachecheck: all {len(targets)} targets met", green=True)
        return
    if missed:
        tr.write_line(f"cachecheck: {len(missed)} of {len(targets)} targets missed:", red=True, bold=True)
    if unclear:
        tr.write_line(f"cachecheck: {len(unclear)} of {len(targets)} targets inconclusive (not failing):", yellow=True)
    if unenforced:
        tr.write_line(
            f"cachecheck: {len(unenforced)} of {len(targets)} timing targets missed, not enforced "
            "(--cache-timing report):",
            yellow=True,
        )
    for row in unclear + unenforced + missed:
        warning = row["status"] in (INCONCLUSIVE, NOT_ENFORCED)
        line = f"  {row['name']} {row['metric']} {row['value_text']} (target {row['limit_text']}): {row['status']}"
        tr.write_line(line, red=not warning, yellow=warning)
        for detail_line in textwrap.wrap(row["detail"], WIDTH, initial_indent="    ", subsequent_indent="    "):
            tr.write_line(detail_line)
