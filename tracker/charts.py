"""Charts drawn on the server as inline SVG: no JavaScript, no CDN, readable without CSS.

Each chart carries a <title> and <desc> for screen readers and comes with the same
numbers as a table (``Chart.rows``) that the page shows beside it. Pure functions of
already-loaded values: no queries here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 130, 16, 34  # room for the y ticks and the reference-line labels


@dataclass(frozen=True)
class Point:
    week: float  # weeks since the course started (0 = first day)
    value: float
    label: str  # what a reader sees for this point, e.g. "2026-06-08: 14"


@dataclass(frozen=True)
class RefLine:
    value: float
    label: str
    css: str  # "response", "remission", "threshold"


@dataclass(frozen=True)
class Marker:
    """A dated event drawn as a vertical line across the chart, e.g. a dose change."""

    week: float
    short: str  # printed beside the line, e.g. "100 mg"
    label: str  # the whole event, for the tooltip and the description, e.g. "2026-06-08: sertraline 50 → 100 mg"


@dataclass(frozen=True)
class Band:
    """A shaded region between a low and a high edge over some weeks, e.g. an expected course.

    ``edges`` are (week, low, high), oldest first; the polygon runs along the high edge and
    back along the low one, straight between the given weeks.
    """

    edges: tuple[tuple[float, float, float], ...]
    label: str  # the tooltip and the <desc> sentence, e.g. "Expected course: …"
    css: str = "expected"


@dataclass
class Chart:
    chart_id: str
    title: str
    description: str
    svg: SafeString
    header: tuple[str, str]
    rows: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Frame:
    """Maps weeks and values to SVG coordinates."""

    x_min: float
    x_max: float
    y_max: float

    def x(self, week: float) -> float:
        span = (self.x_max - self.x_min) or 1
        return round(LEFT + (week - self.x_min) / span * (WIDTH - LEFT - RIGHT), 1)

    def y(self, value: float) -> float:
        return round(HEIGHT - BOTTOM - value / (self.y_max or 1) * (HEIGHT - TOP - BOTTOM), 1)


def _frame(points: Sequence[Point], y_max: float, bars: bool = False, also: Sequence[float] = ()) -> _Frame:
    weeks = [p.week for p in points] + list(also) or [0.0]
    low = min(0.0, min(weeks))
    high = max(max(weeks), low + 4)  # at least four weeks wide, so one point is not a wall
    return _Frame(x_min=low - (0.6 if bars else 0), x_max=high + (0.6 if bars else 0), y_max=y_max)


def _axes(frame: _Frame, y_ticks: Sequence[float], y_name: str) -> SafeString:
    x0, x1 = frame.x(frame.x_min), frame.x(frame.x_max)
    y0 = frame.y(0)
    ticks = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/><text x="{}" y="{}" class="tick" '
        'text-anchor="end">{}</text>',
        ((x0, x1, frame.y(t), frame.y(t), x0 - 4, frame.y(t) + 4, f"{t:g}") for t in y_ticks),
    )
    first, last = int(frame.x_min) if frame.x_min >= 0 else int(frame.x_min) - 1, int(frame.x_max) + 1
    step = max(1, (last - first) // 12)
    week_ticks = format_html_join(
        "",
        '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>',
        ((frame.x(w), y0 + 16, w) for w in range(max(first, 0), last, step) if frame.x_min <= w <= frame.x_max),
    )
    return format_html(
        '<g class="axes"><line x1="{}" x2="{}" y1="{}" y2="{}"/><line x1="{}" x2="{}" y1="{}" y2="{}"/>{}{}'
        '<text x="{}" y="{}" class="axis-label" text-anchor="middle">Week of treatment</text>'
        '<text x="12" y="{}" class="axis-label" transform="rotate(-90 12 {})" text-anchor="middle">{}</text></g>',
        x0,
        x1,
        y0,
        y0,
        x0,
        x0,
        frame.y(frame.y_max),
        y0,
        ticks,
        week_ticks,
        (x0 + x1) / 2,
        HEIGHT - 4,
        HEIGHT / 2,
        HEIGHT / 2,
        y_name,
    )


def _ref_lines(frame: _Frame, lines: Sequence[RefLine]) -> SafeString:
    x0, x1 = frame.x(frame.x_min), frame.x(frame.x_max)
    return format_html_join(
        "",
        '<g class="ref ref-{}" data-value="{}"><line x1="{}" x2="{}" y1="{}" y2="{}" stroke-dasharray="6 4"/>'
        '<text x="{}" y="{}" class="ref-label">{}</text></g>',
        (
            (
                line.css,
                f"{line.value:g}",
                x0,
                x1,
                frame.y(line.value),
                frame.y(line.value),
                x1 + 6,
                frame.y(line.value) + 4,
                line.label,
            )
            for line in lines
        ),
    )


def _bands(frame: _Frame, bands: Sequence[Band]) -> SafeString:
    def corners(band: Band) -> str:
        top = [(frame.x(w), frame.y(high)) for w, _, high in band.edges]
        bottom = [(frame.x(w), frame.y(low)) for w, low, _ in reversed(band.edges)]
        return " ".join(f"{x},{y}" for x, y in top + bottom)

    return format_html_join(
        "",
        '<g class="band band-{}" data-edges="{}"><title>{}</title><polygon points="{}"/></g>',
        (
            (band.css, " ".join(f"{w:g}:{low:g}-{high:g}" for w, low, high in band.edges), band.label, corners(band))
            for band in bands
            if band.edges
        ),
    )


def _markers(frame: _Frame, markers: Sequence[Marker]) -> SafeString:
    top, bottom = frame.y(frame.y_max), frame.y(0)
    return format_html_join(
        "",
        '<g class="marker" data-week="{}"><title>{}</title><line x1="{}" x2="{}" y1="{}" y2="{}" '
        'stroke-dasharray="2 3"/><text x="{}" y="{}" class="marker-label">{}</text></g>',
        (
            (f"{m.week:.1f}", m.label, x, x, top, bottom, x + 3, top + 10, m.short)
            for m, x in ((m, frame.x(m.week)) for m in markers)
            if frame.x_min <= m.week <= frame.x_max
        ),
    )


def _svg(chart_id: str, title: str, description: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="course-chart" id="{}" viewBox="0 0 {} {}" '
        'width="100%" role="img" aria-labelledby="{}-title {}-desc" preserveAspectRatio="xMinYMin meet">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        chart_id,
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        body,
    )


def _ticks(y_max: float) -> list[float]:
    """Round tick values, at most six: 0, 5, 10 … for a PHQ-9, 0, 25, 50 … for a percentage."""
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100) if y_max / s <= 6)
    return [float(v) for v in range(0, int(y_max) + 1, step)]


def _line(frame: _Frame, points: Sequence[Point]) -> SafeString:
    path = " ".join(f"{frame.x(p.week)},{frame.y(p.value)}" for p in points)
    markers = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="4" class="point" data-week="{}" data-value="{}"><title>{}</title></circle>',
        ((frame.x(p.week), frame.y(p.value), f"{p.week:.1f}", f"{p.value:g}", p.label) for p in points),
    )
    return format_html('<polyline class="series" fill="none" points="{}"/>{}', path, markers)


def _bars(frame: _Frame, points: Sequence[Point]) -> SafeString:
    width = max(4.0, frame.x(1) - frame.x(0) - 4)
    return format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar" data-week="{}" data-value="{}">'
        "<title>{}</title></rect>",
        (
            (
                round(frame.x(p.week) - width / 2, 1),
                frame.y(p.value),
                round(width, 1),
                round(frame.y(0) - frame.y(p.value), 1),
                f"{p.week:g}",
                f"{p.value:g}",
                p.label,
            )
            for p in points
        ),
    )


def draw(
    *,
    kind: Literal["line", "bar"],
    chart_id: str,
    title: str,
    description: str,
    y_name: str,
    y_max: float,
    points: Sequence[Point],
    lines: Sequence[RefLine] = (),
    markers: Sequence[Marker] = (),
    bands: Sequence[Band] = (),
) -> Chart:
    """A "line" of scores with a marker each, or one "bar" per week; dashed reference lines on top.

    ``bands`` (an expected course) are shaded first and ``markers`` (dose changes, dotted
    vertical lines) next, so the scores stay on top; the x axis widens to show a band's weeks.
    Each band's label ends the <desc>, so a screen reader hears it with the rest.
    """
    ordered = sorted(points, key=lambda p: p.week)
    band_weeks = [edge[0] for band in bands for edge in band.edges]
    frame = _frame(ordered, y_max, bars=kind == "bar", also=band_weeks)
    series = _bars(frame, ordered) if kind == "bar" else _line(frame, ordered)
    body = format_html(
        "{}{}{}{}{}",
        _axes(frame, _ticks(y_max), y_name),
        _bands(frame, bands),
        _markers(frame, markers),
        series,
        _ref_lines(frame, lines),
    )
    description = " ".join([description, *(band.label for band in bands if band.edges)])
    rows = [(p.label.split(": ")[0], f"{p.value:g}") for p in ordered]
    header = ("Week" if kind == "bar" else "Date", y_name)
    return Chart(chart_id, title, description, _svg(chart_id, title, description, body), header, rows)


CHART_STYLE = mark_safe(  # a constant stylesheet
    "<style>"
    ".course-chart{max-width:720px;font:11px sans-serif;background:var(--body-bg,#fff)}"
    ".course-chart .axes line{stroke:currentColor}.course-chart .grid{stroke:#ddd}"
    ".course-chart .series{stroke:#2962a8;stroke-width:2}.course-chart .point{fill:#2962a8}"
    ".course-chart .bar{fill:#4c8a4c}.course-chart .ref line{stroke-width:1.5}"
    ".course-chart .ref-response line{stroke:#c25400}.course-chart .ref-remission line{stroke:#2e7d32}"
    ".course-chart .ref-threshold line{stroke:#a00}.course-chart text{fill:currentColor}"
    ".course-chart .band polygon{fill:#2962a8;fill-opacity:.12;stroke:#2962a8;stroke-opacity:.35}"
    ".course-chart .marker line{stroke:#6a1b9a;stroke-width:1.5}.course-chart .marker-label{fill:#6a1b9a}"
    "</style>"
)
