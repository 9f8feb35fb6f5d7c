"""Measurement-based monitoring: BMI from the measurements on record, and the §5 schedules' due dates.

Reads only (selectors); the writes are in ``tracker.services.measurements``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tracker import clinical
from tracker.models import ClinicalMeasurement, WeightMeasurement
from tracker.models.measurements import body_mass_index


def height_for(heights: list[ClinicalMeasurement], at: dt.datetime) -> Decimal | None:
    """The height to compute a BMI at ``at``: the last one measured by then, else the first after.

    ``heights`` are the patient's current heights in time order. An adult's height hardly
    changes, so a height measured after the weight is better than no BMI at all.
    """
    before = [h for h in heights if h.measured_at <= at]
    if before:
        return before[-1].value
    return heights[0].value if heights else None


def bmi_by_weight(weights: list[WeightMeasurement]) -> dict[int, Decimal]:
    """BMI beside each weight (by weight id), from the patient's heights: one query per call."""
    patient_ids = {w.patient_id for w in weights}
    heights: dict[int, list[ClinicalMeasurement]] = {}
    for h in (
        ClinicalMeasurement.objects.current()
        .filter(patient_id__in=patient_ids, kind=ClinicalMeasurement.Kind.HEIGHT)
        .order_by("measured_at", "id")
    ):
        heights.setdefault(h.patient_id, []).append(h)
    result: dict[int, Decimal] = {}
    for w in weights:
        height = height_for(heights.get(w.patient_id, []), w.measured_at)
        if height is not None:
            result[w.pk] = body_mass_index(w.weight_kg, height)
    return result


# --- Monitoring schedules (§5): the due dates of each, pure arithmetic on dates ----------------


@dataclass(frozen=True)
class Schedule:
    """One §5 schedule as ``clinical.MONITORING_SCHEDULES`` names and cites it."""

    name: str
    classes: tuple[str, ...]
    measures: tuple[str, ...]
    weeks: tuple[int, ...]
    then_every_weeks: int | None
    restart_on_dose_increase: bool


def schedules() -> dict[str, Schedule]:
    """Every monitoring schedule, by name, from the one place that defines them."""
    return {
        name: Schedule(
            name=name,
            classes=tuple(d["classes"]),
            measures=tuple(d["measures"]),
            weeks=tuple(d["weeks"]),
            then_every_weeks=d["then_every_weeks"],
            restart_on_dose_increase=d["restart_on_dose_increase"],
        )
        for name, d in clinical.get("MONITORING_SCHEDULES").items()
    }


def schedule_anchors(
    schedule: Schedule, *, start_date: dt.date, dose_increases: Sequence[dt.date] = ()
) -> list[dt.date]:
    """Where the schedule plans from: the course's start, and each dose increase if it restarts there."""
    anchors = [start_date]
    if schedule.restart_on_dose_increase:
        anchors += sorted(d for d in set(dose_increases) if d > start_date)
    return anchors


def due_dates(
    schedule: Schedule, *, start_date: dt.date, dose_increases: Sequence[dt.date] = (), until: dt.date
) -> list[dt.date]:
    """The schedule's due dates from the course's start up to ``until``.

    A schedule that restarts at a dose increase plans from each increase as from a new start,
    and what the earlier anchor had planned after the increase is dropped (it is replaced).
    """
    anchors = schedule_anchors(schedule, start_date=start_date, dose_increases=dose_increases)
    dates: list[dt.date] = []
    for i, anchor in enumerate(anchors):
        stop = anchors[i + 1] if i + 1 < len(anchors) else until + dt.timedelta(days=1)
        offsets = list(schedule.weeks)
        if schedule.then_every_weeks:
            week = offsets[-1] + schedule.then_every_weeks
            while anchor + dt.timedelta(weeks=week) <= until:
                offsets.append(week)
                week += schedule.then_every_weeks
        dates += [d for w in offsets if (d := anchor + dt.timedelta(weeks=w)) < stop and d <= until]
    return sorted(set(dates))


@dataclass(frozen=True)
class DueItem:
    schedule: str
    measure: str
    due_date: dt.date

    def is_overdue(self, today: dt.date) -> bool:
        return self.due_date < today


@dataclass(frozen=True)
class DueWindow:
    """One due date and the local days that belong to it.

    ``opens`` is the first day a measurement counts for this date and ``closes`` the first day
    of the next date's window (``date.max`` for the last date): a measurement in
    ``[opens, closes)`` fulfils this date and not the next. ``last_day`` is the last day to
    record it before it is overdue. Windows never overlap, so a date can be judged missed
    while the next one is already open.
    """

    due: dt.date
    opens: dt.date
    closes: dt.date
    last_day: dt.date
    baseline: bool = False

    def fulfilled_by(self, days: Sequence[dt.date]) -> bool:
        return any(self.opens <= d < self.closes for d in days)

    def missed(self, days: Sequence[dt.date], today: dt.date) -> bool:
        """Its last day has passed and nothing has been measured since its window opened.

        A later measurement (in a later date's window) catches a missed follow-up date up: its
        value cannot be had any more, and the schedule is current again. A baseline (week 0 of
        the course, or a restart anchor's date) is not caught up: §5's baseline is the value
        before the treatment (or the dose increase), which a week-4 weight or a BP taken at the
        next increase is not, so it is missed unless measured within its own window.
        """
        if self.last_day >= today:
            return False
        if self.baseline:
            return not self.fulfilled_by(days)
        return not any(d >= self.opens for d in days)


def due_windows(dates: Sequence[dt.date], baselines: Collection[dt.date] = ()) -> list[DueWindow]:
    """The windows of ``dates`` (sorted, distinct): each owns its days, none overlaps the next.

    A measurement up to ``MONITORING_EARLY_DAYS`` before a date is for that date, so the
    previous date's grace (``MONITORING_OVERDUE_GRACE_DAYS``) ends the day before the next
    date's early days begin: its last day is ``min(due + grace, next due − early − 1)``, and
    never before its own due date (a cadence tighter than the early margin keeps its due day,
    and the next window then opens the day after). Without the cut, FIBSER's weeks 2, 4 and 6
    (14 days apart, 7 early, 7 grace) had a grace that outlived their window and were never
    flagged, and a weekly date's own due day counted for the week after. The dates in
    ``baselines`` are baselines (``DueWindow.missed``).
    """
    early = dt.timedelta(days=clinical.get("MONITORING_EARLY_DAYS"))
    grace = dt.timedelta(days=clinical.get("MONITORING_OVERDUE_GRACE_DAYS"))
    one = dt.timedelta(days=1)
    lasts = [
        max(due, min(due + grace, dates[i + 1] - early - one)) if i + 1 < len(dates) else due + grace
        for i, due in enumerate(dates)
    ]
    opens = [due - early if i == 0 else max(due - early, lasts[i - 1] + one) for i, due in enumerate(dates)]
    return [
        DueWindow(due, opens[i], opens[i + 1] if i + 1 < len(dates) else dt.date.max, lasts[i], due in baselines)
        for i, due in enumerate(dates)
    ]


def due_horizon(schedule: Schedule, today: dt.date) -> dt.date:
    """Far enough ahead of ``today`` to hold the schedule's next due date whatever its phase."""
    return today + dt.timedelta(weeks=(schedule.then_every_weeks or 0) + max(schedule.weeks) + 1)


def schedule_windows(
    schedule: Schedule, *, start_date: dt.date, dose_increases: Sequence[dt.date] = (), today: dt.date
) -> list[DueWindow]:
    """The windows of the schedule's dates up to the one after ``today``."""
    dates = due_dates(
        schedule, start_date=start_date, dose_increases=dose_increases, until=due_horizon(schedule, today)
    )
    baselines = (
        schedule_anchors(schedule, start_date=start_date, dose_increases=dose_increases) if 0 in schedule.weeks else ()
    )
    return due_windows(dates, baselines)


def next_due(
    schedule: Schedule,
    measure: str,
    *,
    start_date: dt.date,
    dose_increases: Sequence[dt.date] = (),
    measured_dates: Sequence[dt.date],
    today: dt.date,
) -> DueItem | None:
    """What of ``measure`` is due next: the current window's date if nothing fulfilled it, else the next.

    A date whose window has closed is not asked for again: the next one is what is due, and
    the closed one, if missed, is the overdue sweep's (``DueWindow.missed``).
    """
    for window in schedule_windows(schedule, start_date=start_date, dose_increases=dose_increases, today=today):
        if window.closes <= today:
            continue  # a later date stands for this one
        if window.fulfilled_by(measured_dates):
            continue  # fulfilled: the next one is what is due
        return DueItem(schedule.name, measure, window.due)
    return None
