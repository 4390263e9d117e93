"""Horizontal bar charts with 95 % intervals as inline SVG, drawn on the server (no script).

Each row is a group: its name and value on one line, the bar under it with the interval as a
whisker; an optional dashed line marks a threshold (the four-fifths line). Rows are stacked, so
a chart fits a phone's width whatever the number of groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH = 360
ROW = 46
TOP = 26
LEFT = 4
RIGHT = 8
LABEL_CHARS = 30
NOTE_CHARS = 52


@dataclass(frozen=True)
class Bar:
    """One group's value (a rate or ratio, 0 to 1 or a little over) and its interval."""

    label: str
    value: Decimal | None
    low: Decimal | None = None
    high: Decimal | None = None
    note: str = ""
    judged: bool = True
    """Large enough to count; others are drawn grey."""


def percent(value: Decimal | None) -> str:
    """0.615 as 61.5% ('—' for none)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def ratio(value: Decimal | None) -> str:
    """A ratio with two decimals ('—' for none)."""
    return "—" if value is None else f"{value:.2f}"


def _x(value: Decimal, top: Decimal) -> float:
    """A value's x on the chart (scaled so `top` reaches the right edge)."""
    share = min(max(value / top, Decimal(0)), Decimal(1)) if top > 0 else Decimal(0)
    return LEFT + float(share) * (WIDTH - LEFT - RIGHT)


def _short(text: str, chars: int = LABEL_CHARS) -> str:
    """A label cut to fit (the whole one is in the row's title)."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def bar_chart(
    chart_id: str,
    bars: Sequence[Bar],
    shown: str = "percent",
    line: Decimal | None = None,
    line_label: str = "",
) -> Markup:
    """The chart: one row per bar, a whisker per interval, a dashed line at `line`."""
    fmt = percent if shown == "percent" else ratio
    values = [v for b in bars for v in (b.value, b.high, line) if v is not None]
    top = max([Decimal(1), *values])
    height = TOP + ROW * max(len(bars), 1) + 6
    rows = [_row(i, bar, top, fmt) for i, bar in enumerate(bars)]
    if not bars:
        rows.append(f'<text x="{LEFT}" y="{TOP + 16}" font-size="12" fill="#666">—</text>')
    guide = ""
    if line is not None:
        x = _x(line, top)
        anchor = "end" if x > WIDTH / 2 else "start"
        shift = -4 if anchor == "end" else 4
        guide = (
            f'<g class="threshold"><line x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" '
            f'y2="{height - 4}" stroke="#a12a1f" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{x + shift:.1f}" y="{TOP - 12}" text-anchor="{anchor}" font-size="11" '
            f'fill="#a12a1f">{escape(line_label)} {escape(fmt(line))}</text></g>'
        )
    return Markup(
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img">'
        + "".join(rows)
        + guide
        + "</svg>"
    )


def _row(index: int, bar: Bar, top: Decimal, show: Callable[[Decimal | None], str]) -> str:
    """One group: name and value, the bar, the interval's whisker."""
    y = TOP + index * ROW
    colour = "#4f7942" if bar.judged else "#b9b5a8"
    value = show(bar.value)
    if bar.low is not None and bar.high is not None:
        value += f" [{show(bar.low)}–{show(bar.high)}]"
    parts = [
        f'<g class="bar"><title>{escape(bar.label)}: {escape(value)} {escape(bar.note)}</title>',
        f'<text x="{LEFT}" y="{y + 12}" font-size="12" fill="#222">{escape(_short(bar.label))}'
        f"</text>",
        f'<text x="{WIDTH - RIGHT}" y="{y + 12}" font-size="11" text-anchor="end" '
        f'fill="#444">{escape(value)}</text>',
    ]
    if bar.value is not None:
        width = _x(bar.value, top) - LEFT
        parts.append(
            f'<rect x="{LEFT}" y="{y + 18}" width="{width:.1f}" height="12" fill="{colour}"/>'
        )
    if bar.low is not None and bar.high is not None:
        lo, hi, mid = _x(bar.low, top), _x(bar.high, top), y + 24
        parts.append(
            f'<path d="M{lo:.1f},{mid} H{hi:.1f} M{lo:.1f},{mid - 5} V{mid + 5} '
            f'M{hi:.1f},{mid - 5} V{mid + 5}" stroke="#222" stroke-width="1.2" fill="none"/>'
        )
    if bar.note:
        parts.append(
            f'<text x="{LEFT}" y="{y + 42}" font-size="10" fill="#666">'
            f"{escape(_short(bar.note, NOTE_CHARS))}</text>"
        )
    parts.append("</g>")
    return "".join(parts)
