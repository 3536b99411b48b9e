"""``--cache-report run.html``: one self-contained page (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from ..checks.targets import MET, MISSED
from ..metrics import METRICS
from ..metrics import format_ms as ms
from ..metrics import format_percent as percent
from .cells import SIZE_HEADER, crash_note, has_sizes, pattern_cells, size_cells
from .svg import Series, hit_rate_bars, line_chart

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827; background: #f3f4f6;
       margin: 0; padding: 24px; }
main { max-width: 1080px; margin: 0 auto; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 12px; }
.sub { color: #4b5563; margin: 0 0 20px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 20px; }
.card { background: #fff; border-radius: 10px; padding: 12px 18px; min-width: 140px;
        box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.card b { display: block; font-size: 22px; }
.card span { color: #6b7280; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card.bad b { color: #b91c1c; } .card.good b { color: #15803d; }
section { background: #fff; border-radius: 10px; padding: 18px 20px; margin-bottom: 20px;
          box-shadow: 0 1px 2px rgba(0,0,0,.06); overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #6b7280; }
td.num, th.num { text-align: right; white-space: nowrap; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f3f4f6; padding: 1px 4px;
       border-radius: 4px; }
.pill { display: inline-block; padding: 1px 10px; border-radius: 999px; font-weight: 600; font-size: 12px; }
.met { background: #dcfce7; color: #166534; } .missed { background: #fee2e2; color: #991b1b; }
.nodata { background: #fef3c7; color: #92400e; }
.detail { color: #4b5563; font-size: 12.5px; }
.crash { background: #fef3c7; color: #92400e; border-radius: 10px; padding: 10px 18px; margin: 0 0 20px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 20px; }
.chart { max-width: 100%; height: auto; }
footer { color: #6b7280; font-size: 12px; text-align: center; }
"""

_PILL = {MET: "met", MISSED: "missed"}


def _pill(status: str) -> str:
    return f'<span class="pill {_PILL.get(status, "nodata")}">{escape(status)}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: range | None = None) -> str:
    """Cells are HTML already (escaped by the caller); ``numeric`` columns (default: all but the first) align right."""
    numeric = range(1, len(header)) if numeric is None else numeric
    head = "".join(f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _targets(report: dict[str, Any]) -> str:
    if not report["targets"]:
        return ""
    rows = [
        [
            f"<b>{escape(row['name'])}</b> <code>{escape(row['pattern'])}</code>",
            f"<code>{escape(row['metric'])}</code>",
            escape(row["value_text"]),
            escape(row["limit_text"]),
            _pill(row["status"]) + (f'<div class="detail">{escape(row["detail"])}</div>' if row["detail"] else ""),
        ]
        for row in report["targets"]
    ]
    table = _table(("Name", "Metric", "Value", "Target", "Status"), rows, numeric=range(2, 4))
    return f'<section id="targets"><h2>Targets</h2>{table}</section>'


def _pattern_table(title: str, section_id: str, patterns: dict[str, dict[str, Any]], first: str) -> str:
    if not patterns:
        return ""
    rows = [
        [f"<code>{escape(pattern)}</code>", *pattern_cells(stats), str(stats["keys_without_ttl"])]
        for pattern, stats in patterns.items()
    ]
    header = (first, "Reads", "Hits", "Misses", "Hit rate", "p50 ms", "p95 ms", "p99 ms", "Commands", "No TTL")
    return f'<section id="{section_id}"><h2>{escape(title)}</h2>{_table(header, rows)}</section>'


def _size_table(patterns: dict[str, dict[str, Any]]) -> str:
    """Value bytes, memory at the end of the largest test, and local hits per pattern."""
    if not has_sizes(patterns):
        return ""
    rows = [[f"<code>{escape(pattern)}</code>", *map(escape, size_cells(stats))] for pattern, stats in patterns.items()]
    header = ("Pattern", *(name.capitalize() for name in SIZE_HEADER))
    note = (
        '<p class="sub">~ memory estimated by the fake backend (key + value bytes); MEMORY USAGE on real servers</p>'
        if any(stats["memory_source"] == "estimate" for stats in patterns.values())
        else ""
    )
    return f'<section id="sizes"><h2>Values and memory per pattern</h2>{_table(header, rows)}{note}</section>'


def _target_limit(report: dict[str, Any], pattern: str, metric: str) -> float | None:
    limits = [row["limit"] for row in report["targets"] if row["pattern"] == pattern and row["metric"] == metric]
    return (max(limits) if METRICS[metric].floor else min(limits)) if limits else None  # the strictest


def _charts(report: dict[str, Any]) -> str:
    patterns = report["patterns"]
    bars = hit_rate_bars(
        [
            (pattern, stats["hit_rate"], _target_limit(report, pattern, "hit_rate"))
            for pattern, stats in patterns.items()
        ]
    )
    cdf = line_chart(
        [Series(pattern, stats["latency_cdf"]) for pattern, stats in patterns.items() if stats["latency_cdf"]],
        x_label="command latency (ms, log scale)",
        y_label="fraction of commands",
        y_max=1.0,
    )
    blocks = [f"<div><h2>Hit rate per pattern</h2>{bars}</div>"]
    if cdf:
        blocks.append(f"<div><h2>Command latency (CDF)</h2>{cdf}</div>")
    blocks.extend(_measurement_charts(report))
    return f'<section id="plots"><div class="charts">{"".join(blocks)}</div></section>'


def _measurement_charts(report: dict[str, Any]) -> list[str]:
    points = report["measurements"]
    blocks = []
    invalidation = [p for p in points if p["metric"] == "invalidation_ms" and isinstance(p["value"], (int, float))]
    ceiling = _target_limit(report, "*", "invalidation_ms")
    sized = [p for p in points if p["metric"] == "invalidation_scaling_ms" and p["size"]]
    if sized:
        by_test: dict[str, list[tuple[float, float]]] = {}
        for point in sized:
            by_test.setdefault(point["nodeid"].rsplit("::", 1)[-1], []).append((point["size"], point["value"]))
        series = [Series(name, sorted(values)) for name, values in sorted(by_test.items())]
        chart = line_chart(
            series, x_label="cache size (keys, log scale)", y_label="invalidation ms", log_y=True, markers=True
        )
        blocks.append(f"<div><h2>Invalidation scaling</h2>{chart}</div>")
    if invalidation:
        values = sorted(p["value"] for p in invalidation)
        chart = line_chart(
            [Series("invalidation", [(index + 1, value) for index, value in enumerate(values)])],
            x_label="measurement (sorted)",
            y_label="invalidation ms",
            log_x=False,
            markers=True,
            integers=True,
            ceiling=ceiling,
        )
        blocks.append(f"<div><h2>Invalidation latency</h2>{chart}</div>")
    stale = [p for p in points if p["metric"] == "stale_reads" and isinstance(p["value"], (int, float))]
    if stale:
        chart = line_chart(
            [Series("stale reads per check", [(index + 1, p["value"]) for index, p in enumerate(stale)])],
            x_label="consistency check",
            y_label="stale reads",
            log_x=False,
            markers=True,
            lines=False,
            integers=True,
            ceiling=_target_limit(report, "*", "stale_reads"),
        )
        blocks.append(f"<div><h2>Staleness</h2>{chart}</div>")
    return blocks


def _failed_checks(report: dict[str, Any]) -> str:
    rows = [
        [f"<code>{escape(test['nodeid'])}</code>", escape(check["marker"]), escape(check["message"])]
        for test in report["tests"]
        for check in test["checks"]
        if check["status"] == "failed"
    ]
    if not rows:
        return ""
    table = _table(("Test", "Check", "Message"), rows, numeric=range(0))
    return f'<section id="failed-checks"><h2>Failed cache checks</h2>{table}</section>'


def _crashes(report: dict[str, Any]) -> str:
    notes = [
        crash_note(crash, code=lambda text: f"<code>{escape(text)}</code>")
        for crash in report["run"]["crashed_workers"]
    ]
    return "".join(f'<p class="crash">{note[:1].upper()}{note[1:]}.</p>' for note in notes)


def _cards(report: dict[str, Any]) -> str:
    run, everything = report["run"], report["patterns"]["*"]
    met = sum(row["status"] == MET for row in report["targets"])  # inconclusive / not enforced are not "met"
    cards = []
    if run["targets"]:
        quality = "good" if not run["targets_missed"] else "bad"
        cards.append((f"{met} / {run['targets']}", "targets met", quality))
    cards += [
        (str(run["tests"]), "tests observed", ""),
        (f"{everything['commands']:,}", "commands", ""),
        (percent(everything["hit_rate"]), "hit rate (all keys)", ""),
        (ms(everything["latency_ms"]["p99"]) + " ms", "p99 latency", ""),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {quality}"><b>{escape(value)}</b><span>{escape(label)}</span></div>'
            for value, label, quality in cards
        )
        + "</div>"
    )


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    server = f" · {escape(report['redis_version'])}" if report["redis_version"] else ""
    created = escape(report["created"])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>cachecheck report</title><style>{STYLE}</style></head><body><main>"
        "<h1>cachecheck report</h1>"
        f'<p class="sub">backend <code>{escape(report["backend"])}</code>{server} · created {created}</p>'
        + _crashes(report)
        + _cards(report)
        + _targets(report)
        + _charts(report)
        + _pattern_table("Per-pattern stats", "patterns", report["patterns"], "Pattern")
        + _size_table(report["patterns"])
        + _pattern_table("Busiest key shapes", "key-shapes", report["key_shapes"], "Key shape")
        + _failed_checks(report)
        + "<footer>pytest-cachecheck · report version "
        + str(report["version"])
        + "</footer></main></body></html>\n"
    )
