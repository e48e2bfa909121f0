"""Inline SVG charts for the HTML report: no JavaScript, no fonts or files to fetch.

Each function returns one ``<svg>`` element (with ``role="img"``, a ``<title>`` and a
``data-chart`` attribute naming the chart, so tests and screen readers can find it).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8",
)
FONT = "font-family:system-ui,sans-serif;font-size:11px"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for exp in range(-4, 12):
        for step in (1, 2, 2.5, 5):
            m = step * 10**exp
            if m >= v:
                return m
    return v


def _ticks(top: float, n: int = 4) -> list[float]:
    return [top * k / n for k in range(n + 1)]


def _fmt(v: float, percent: bool = False) -> str:
    if percent:
        return f"{100 * v:.0f} %" if v * 100 >= 1 or v == 0 else f"{100 * v:.1f} %"
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _legend(names: Sequence[str], x: float, y: float, width: float) -> tuple[list[str], float]:
    parts, cx, cy = [], x, y
    for i, name in enumerate(names):
        w = 18 + 6.5 * len(name)
        if cx + w > x + width:
            cx, cy = x, cy + 16
        parts.append(
            f'<rect x="{cx:.1f}" y="{cy - 9:.1f}" width="10" height="10" fill="{color(i)}"/>'
            f'<text x="{cx + 14:.1f}" y="{cy:.1f}" style="{FONT}">{escape(name)}</text>'
        )
        cx += w
    return parts, cy + 14


def _frame(
    chart: str, title: str, width: int, height: int, legend: list[str], top_pad: float,
    left: float, right: float, plot_h: float, top: float, percent: bool = False,
) -> list[str]:
    """The opening of a vertical chart: the ``<svg>`` element, its title, the legend and
    the horizontal grid lines with their value labels."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" data-chart="{chart}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>{escape(title)}</title>", *legend]
    for t in _ticks(top):
        y = top_pad + plot_h - plot_h * t / top
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
                     f'style="{FONT}">{_fmt(t, percent)}</text>')
    return parts


def stacked_bars(
    chart: str,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    width: int = 900,
    height: int = 300,
) -> str:
    """Stacked vertical bars: one bar per label, one colour per series."""
    names = list(series)
    legend, legend_bottom = _legend(names, 50, 16, width - 60)
    top_pad, left, bottom, right = legend_bottom + 6, 50, 40, 10
    plot_h = height - top_pad - bottom
    plot_w = width - left - right
    totals = [sum(series[s][i] for s in names) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    n = max(len(labels), 1)
    bw = plot_w / n
    parts = _frame(chart, title, width, height, legend, top_pad, left, right, plot_h, top)
    for i, label in enumerate(labels):
        x = left + i * bw
        y = top_pad + plot_h
        for k, s in enumerate(names):
            v = series[s][i]
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(
                f'<rect class="bar" x="{x + bw * 0.1:.1f}" y="{y:.1f}" '
                f'width="{max(bw * 0.8, 1):.1f}" height="{h:.1f}" fill="{color(k)}">'
                f"<title>{escape(label)} · {escape(s)}: {_fmt(v)}</title></rect>"
            )
    step = max(1, round(n / 12))
    for i in range(0, len(labels), step):
        x = left + i * bw + bw / 2
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                     f'style="{FONT}">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(
    chart: str,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    percent: bool = True,
    width: int = 900,
    height: int = 280,
) -> str:
    """One polyline per series over the labels (shares when ``percent``)."""
    names = list(series)
    legend, legend_bottom = _legend(names, 50, 16, width - 60)
    top_pad, left, bottom, right = legend_bottom + 6, 50, 40, 10
    plot_h = height - top_pad - bottom
    plot_w = width - left - right
    top = _nice_max(max((v for s in names for v in series[s]), default=0))
    n = max(len(labels), 1)
    dx = plot_w / max(n - 1, 1)
    parts = _frame(chart, title, width, height, legend, top_pad, left, right, plot_h, top,
                   percent)
    for k, s in enumerate(names):
        pts = " ".join(
            f"{left + i * dx:.1f},{top_pad + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(series[s])
        )
        parts.append(f'<polyline class="line" fill="none" stroke="{color(k)}" '
                     f'stroke-width="2" points="{pts}"><title>{escape(s)}</title></polyline>')
    step = max(1, round(n / 12))
    for i in range(0, len(labels), step):
        parts.append(f'<text x="{left + i * dx:.1f}" y="{height - bottom + 14}" '
                     f'text-anchor="middle" style="{FONT}">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbars(
    chart: str,
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    width: int = 430,
    bar_height: int = 18,
    percent: bool = False,
    max_value: float | None = None,
) -> str:
    """Horizontal bars with their labels and values, largest first as given."""
    label_w = 170
    height = 10 + bar_height * max(len(items), 1)
    top = max_value or _nice_max(max((v for _, v in items), default=0))
    plot_w = width - label_w - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" data-chart="{chart}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, v) in enumerate(items):
        y = 5 + i * bar_height
        w = plot_w * v / top if top else 0
        short = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
            f'style="{FONT}">{escape(short)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{max(w, 0.5):.1f}" '
            f'height="{bar_height - 5}" fill="{color(0)}"><title>{escape(label)}: '
            f"{_fmt(v, percent)}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height * 0.7:.1f}" '
            f'style="{FONT}">{_fmt(v, percent)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["PALETTE", "color", "hbars", "lines", "stacked_bars"]
