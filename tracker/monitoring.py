"""Measurement-based monitoring: BMI from the measurements on record, and the §5 schedules' due dates.

Reads only (selectors); the writes are in ``tracker.services.measurements``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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


def due_dates(
    schedule: Schedule, *, start_date: dt.date, dose_increases: Sequence[dt.date] = (), until: dt.date
) -> list[dt.date]:
    """The schedule's due dates from the course's start up to ``until``.

    A schedule that restarts at a dose increase plans from each increase as from a new start,
    and what the earlier anchor had planned after the increase is dropped (it is replaced).
    """
    anchors = [start_date]
    if schedule.restart_on_dose_increase:
        anchors += sorted(d for d in set(dose_increases) if d > start_date)
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


def due_horizon(schedule: Schedule, today: dt.date) -> dt.date:
    """Far enough ahead of ``today`` to hold the schedule's next due date whatever its phase."""
    return today + dt.timedelta(weeks=(schedule.then_every_weeks or 0) + max(schedule.weeks) + 1)


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

    Each due date owns the days from ``MONITORING_EARLY_DAYS`` before it to the same margin
    before the following one; a measurement in that window fulfils it. A missed date whose
    following date has also come is not asked for twice: the later one stands for both.
    """
    early = dt.timedelta(days=clinical.get("MONITORING_EARLY_DAYS"))
    dates = due_dates(
        schedule, start_date=start_date, dose_increases=dose_increases, until=due_horizon(schedule, today)
    )
    for i, due in enumerate(dates):
        opens = due - early
        closes = dates[i + 1] - early if i + 1 < len(dates) else dt.date.max
        if closes <= today:
            continue  # a later date stands for this one
        if any(opens <= m < closes for m in measured_dates):
            continue  # fulfilled: the next one is what is due
        return DueItem(schedule.name, measure, due)
    return None
