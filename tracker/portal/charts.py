"""Score charts drawn on the server as SVG geometry (pure, no database, no JavaScript).

The template turns a ``LineChart`` into inline SVG with a title, a description and a
data table beside it, so the chart works without scripts and reads out to screen readers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import dateformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from tracker import scales

WIDTH, HEIGHT = 320, 180
LEFT, RIGHT, TOP, BOTTOM = 34, 12, 12, 30  # margins for the axis labels


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: dt.date
    total: int
    band: str


@dataclass(frozen=True)
class Tick:
    at: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the end ticks stay inside the chart


@dataclass(frozen=True)
class LineChart:
    code: str
    title: str
    description: str
    maximum: int
    points: tuple[Point, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    bottom_edge: int = HEIGHT - BOTTOM

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def _y(total: int, maximum: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - total / maximum)


def _x(day: dt.date, first: dt.date, last: dt.date) -> float:
    span = (last - first).days or 1
    return LEFT + (WIDTH - LEFT - RIGHT) * (day - first).days / span


def _day(day: dt.date) -> str:
    """ "01 June" in English, "1 de junio" in Spanish: the format is translated with the words."""
    return dateformat.format(day, _("d F"))


def _describe(name: str, maximum: int, series: list[tuple[dt.date, int]]) -> str:
    if not series:
        return _("No %(name)s answers yet.") % {"name": name}
    (first_day, first), (last_day, last) = series[0], series[-1]
    if len(series) == 1:
        return _("One %(name)s score: %(last)s out of %(maximum)s on %(day)s.") % {
            "name": name,
            "last": last,
            "maximum": maximum,
            "day": _day(last_day),
        }
    values = {
        "count": len(series),
        "name": name,
        "from": _day(first_day),
        "to": _day(last_day),
        "first": first,
        "last": last,
        "maximum": maximum,
    }
    if last < first:
        text = _(
            "%(count)s %(name)s scores from %(from)s to %(to)s: %(first)s to %(last)s out of %(maximum)s "
            "(lower is better; the line went down)."
        )
    elif last > first:
        text = _(
            "%(count)s %(name)s scores from %(from)s to %(to)s: %(first)s to %(last)s out of %(maximum)s "
            "(lower is better; the line went up)."
        )
    else:
        text = _(
            "%(count)s %(name)s scores from %(from)s to %(to)s: %(first)s to %(last)s out of %(maximum)s "
            "(lower is better; the line went level)."
        )
    return text % values


def line_chart(code: str, series: list[tuple[dt.date, int]], first: dt.date, last: dt.date) -> LineChart:
    """Scores of one questionnaire placed on a 0..maximum scale between two dates."""
    scale = scales.get_scale(code)
    maximum = scale.max_total
    points = tuple(
        Point(x=_x(day, first, last), y=_y(total, maximum), day=day, total=total, band=scale.band_for(total))
        for day, total in series
    )
    y_values = sorted({0, *(band.low for band in scale.bands if band.low), maximum})
    y_ticks = tuple(Tick(at=_y(v, maximum), label=str(v)) for v in y_values)
    weeks = max(1, (last - first).days // 7)
    step = 2 if weeks > 6 else 1
    days = [first + dt.timedelta(weeks=w) for w in range(0, weeks + 1, step * 2)]
    x_ticks = tuple(
        Tick(
            at=_x(day, first, last),
            label=dateformat.format(day, "d M"),
            anchor="start" if day == first else "end" if day == days[-1] else "middle",
        )
        for day in days
    )
    return LineChart(
        code=code,
        title=ngettext(
            "%(name)s scores over the last %(count)s week", "%(name)s scores over the last %(count)s weeks", weeks
        )
        % {"name": scale.name, "count": weeks},
        description=_describe(scale.name, maximum, series),
        maximum=maximum,
        points=points,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )
