"""Small inline-SVG charts for the HTML report: bars, lines on log axes, scatter. No scripts, no network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:g}"
    return f"{value:.3g}"


def _log_ticks(low: float, high: float) -> list[float]:
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**power for power in range(first, last + 1)]


def hit_rate_bars(rows: Sequence[tuple[str, float | None, float | None]], width: int = 500) -> str:
    """One horizontal bar per pattern: (label, hit rate or None, hit-rate target or None)."""
    label_width, bar_left, row_height = 150, 160, 30
    bar_width = width - bar_left - 60
    height = row_height * len(rows) + 28
    parts = [
        f'<svg class="chart" role="img" aria-label="hit rate per pattern" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" {FONT}>'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = bar_left + tick * bar_width
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 22}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="#6b7280">{tick:.0%}</text>')
    for index, (label, rate, target) in enumerate(rows):
        y = 6 + index * row_height
        shown = label if len(label) <= 22 else label[:21] + "…"
        parts.append(
            f'<text x="{label_width}" y="{y + 15}" text-anchor="end" fill="#111827"><title>{escape(label)}</title>'
            f"{escape(shown)}</text>"
        )
        parts.append(f'<rect x="{bar_left}" y="{y}" width="{bar_width}" height="20" rx="3" fill="#f3f4f6"/>')
        if rate is None:
            parts.append(f'<text x="{bar_left + 6}" y="{y + 15}" fill="#6b7280">no reads</text>')
        else:
            missed = target is not None and rate < target
            colour = "#dc2626" if missed else "#16a34a" if target is not None else PALETTE[0]
            parts.append(
                f'<rect x="{bar_left}" y="{y}" width="{rate * bar_width:.1f}" height="20" rx="3" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{bar_left + bar_width + 6}" y="{y + 15}" fill="#111827" font-weight="600">{rate:.1%}</text>'
            )
        if target is not None:
            x = bar_left + target * bar_width
            parts.append(
                f'<line x1="{x:.1f}" y1="{y - 3}" x2="{x:.1f}" y2="{y + 23}" stroke="#111827" stroke-width="2" '
                f'stroke-dasharray="3 2"><title>target {target:.0%}</title></line>'
            )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = True,
    log_y: bool = False,
    y_max: float | None = None,
    markers: bool = False,
    lines: bool = True,
    integers: bool = False,
    ceiling: float | None = None,
    width: int = 500,
    height: int = 300,
) -> str:
    """Several series on shared axes: ``lines`` joins points, ``markers`` dots them; ``ceiling`` draws a limit.

    ``integers`` keeps linear-axis ticks on whole numbers (counts, measurement numbers).
    """
    points = [point for item in series for point in item.points]
    if not points:
        return ""
    left, right, top, bottom = 64, 30, 12, 44
    legend_height = 18 * math.ceil(len(series) / 3)
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for x, _ in points if not log_x or x > 0]
    ys = [y for _, y in points if not log_y or y > 0]
    if ceiling is not None:
        ys.append(ceiling)
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = (min(ys), max(ys)) if log_y else (0.0, y_max if y_max is not None else max(ys) * 1.1 or 1.0)
    if log_x:
        x_low, x_high = (x_low / 2, x_high * 2) if x_high <= x_low * 1.01 else (x_low / 1.1, x_high * 1.1)
    if log_y:
        y_low, y_high = (y_low / 2, y_high * 2) if y_high <= y_low * 1.01 else (y_low / 1.1, y_high * 1.1)
    if not log_x and (integers or x_high == x_low):
        x_low, x_high = x_low - 0.5, x_high + 0.5

    def scale(value: float, low: float, high: float, log: bool) -> float:
        if log:
            return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return (value - low) / (high - low)

    def px(x: float) -> float:
        return left + scale(x, x_low, x_high, log_x) * plot_w

    def py(y: float) -> float:
        return top + plot_h - scale(y, y_low, y_high, log_y) * plot_h

    total_height = height + legend_height
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(y_label)} by {escape(x_label)}" '
        f'viewBox="0 0 {width} {total_height}" width="{width}" height="{total_height}" {FONT}>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#e5e7eb"/>',
    ]
    x_ticks = _ticks(x_low, x_high, log_x, integers)
    y_ticks = _ticks(y_low, y_high, log_y, integers)
    for tick in x_ticks:
        x = px(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#6b7280">{_number(tick)}</text>'
        )
    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7280">{_number(tick)}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 34}" text-anchor="middle" fill="#374151">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" fill="#374151">'
        f"{escape(y_label)}</text>"
    )
    if ceiling is not None:
        y = py(ceiling)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#dc2626" '
            f'stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{left + plot_w - 4}" y="{y - 5:.1f}" text-anchor="end" fill="#dc2626">target</text>'
        )
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        usable = [(x, y) for x, y in item.points if (not log_x or x > 0) and (not log_y or y > 0)]
        coords = [(px(x), py(y)) for x, y in usable]
        if markers:
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>' for x, y in coords)
        if lines and len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        lx = left + (index % 3) * (plot_w / 3)
        ly = height + 4 + 18 * (index // 3)
        shown = item.label if len(item.label) <= 30 else item.label[:29] + "…"
        parts.append(f'<rect x="{lx:.1f}" y="{ly}" width="12" height="12" rx="2" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 18:.1f}" y="{ly + 10}" fill="#111827">{escape(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float, log: bool, integers: bool) -> list[float]:
    """Powers of ten on a log axis when at least two fit, else round linear steps."""
    if log:
        powers = [tick for tick in _log_ticks(low, high) if low <= tick <= high]
        if len(powers) >= 2:
            return powers
    return [tick for tick in _linear(low, high, integers) if low <= tick <= high]


def _linear(low: float, high: float, integers: bool = False) -> list[float]:
    span = high - low
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1
    if integers:
        step = max(step, 1)
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= 6:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + index * step for index in range(int((high - first) / step) + 1)]
