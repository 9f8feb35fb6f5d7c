"""Schedules -> planned doses, in the patient's wall-clock time, stored in UTC.

The DST rule (clinical-reference §7 wall_clock): a schedule's "08:00" is 08:00 local on
every day, whatever the offset. On the spring-forward day a local time that does not
exist (02:30 in New York) is moved forward by the gap (03:30 local); on the fall-back day
a time that occurs twice (01:30) means its first occurrence. Both rules are what Python's
``zoneinfo`` gives for ``fold=0``, so each local slot yields exactly one instant.

Planned doses are generated ahead over a rolling horizon. Rows in the past are history
and are never rewritten; when the plan changes (dose, times, the patient's zone) only the
pending rows still in the future are replaced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F, Q, QuerySet

from tracker import clinical
from tracker.models import DoseSchedule, Patient, PlannedDose

UTC = dt.UTC
BATCH_SIZE = 5000


@dataclass(frozen=True)
class Slot:
    due_at: dt.datetime
    deadline: dt.datetime
    local_date: dt.date


def local_instant(day: dt.date, hhmm: str, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of wall-clock ``hhmm`` on ``day`` in ``zone`` (DST rule above)."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0
    # Round-trip through UTC so a non-existent time comes back as the shifted wall time.
    return local.astimezone(UTC)


def _end_date(schedule: DoseSchedule) -> dt.date | None:
    ends = [d for d in (schedule.end_date, schedule.prescription.end_date) if d is not None]
    return min(ends) if ends else None


def dose_days(schedule: DoseSchedule, first: dt.date, last: dt.date) -> Iterator[dt.date]:
    """The local dates in [first, last] on which the schedule has doses."""
    start = max(first, schedule.start_date, schedule.prescription.start_date)
    end = _end_date(schedule)
    stop = last if end is None else min(last, end)
    day = start
    while day <= stop:
        if schedule.kind == DoseSchedule.Kind.DAILY:
            yield day
        elif schedule.kind == DoseSchedule.Kind.WEEKDAYS:
            if day.weekday() in schedule.weekdays:
                yield day
        elif schedule.kind == DoseSchedule.Kind.EVERY_N_DAYS:
            if (day - schedule.start_date).days % schedule.interval_days == 0:
                yield day
        day += dt.timedelta(days=1)


def expand(schedule: DoseSchedule, zone: ZoneInfo, first: dt.date, last: dt.date) -> list[Slot]:
    """Slots of ``schedule`` on local dates [first, last], each with its deadline.

    Deadline = due + grace, grace = min(class default, half the interval to the next
    dose) (§7 grace), so a missed morning dose is flagged before the evening one is due.
    PRN schedules have no slots: an as-needed dose is never missed.
    """
    if schedule.kind == DoseSchedule.Kind.PRN:
        return []
    class_grace = clinical.grace_for_class(schedule.prescription.drug.drug_class)
    # Look past `last` far enough to find the dose after the window's final one.
    lookahead = dt.timedelta(days=max(schedule.interval_days, 7) + 1)
    instants: list[tuple[dt.datetime, dt.date]] = [
        (local_instant(day, hhmm, zone), day)
        for day in dose_days(schedule, first, last + lookahead)
        for hhmm in sorted(schedule.times_of_day)
    ]
    # On the spring-forward day two local times can land on one instant (02:30 and 03:30
    # in New York); keep one, so the other's grace is not cut to zero.
    instants = sorted(dict.fromkeys(instants))
    slots = []
    for index, (due_at, day) in enumerate(instants):
        if day > last:
            break
        grace = class_grace
        if index + 1 < len(instants):
            grace = min(grace, (instants[index + 1][0] - due_at) / 2)
        slots.append(Slot(due_at=due_at, deadline=due_at + grace, local_date=day))
    return slots


def _schedules_needing_extension(now: dt.datetime, target: dt.datetime) -> QuerySet[DoseSchedule]:
    refresh_before = target - dt.timedelta(days=1)
    ended_before = (now - dt.timedelta(days=2)).date()
    return (
        DoseSchedule.objects.current()
        .exclude(kind=DoseSchedule.Kind.PRN)
        .filter(prescription__entered_in_error_at__isnull=True, prescription__patient__is_active=True)
        .filter(Q(planned_until__isnull=True) | Q(planned_until__lt=refresh_before))
        .filter(Q(active_until__isnull=True) | Q(planned_until__isnull=True) | Q(active_until__gt=F("planned_until")))
        .exclude(end_date__lt=ended_before)
        .exclude(prescription__end_date__lt=ended_before)
        .select_related("prescription__drug", "prescription__patient")
        .order_by("id")
    )


def _plan_schedule(schedule: DoseSchedule, until: dt.datetime) -> list[PlannedDose]:
    """New PlannedDose rows for ``schedule`` after its ``planned_until``, up to ``until``.

    Never before the plan existed (``active_from``, else ``created_at``): a plan entered
    today must not turn last week's unlogged doses into false "missed" flags. Never after
    ``active_until``: a replaced or stopped plan plans nothing more.
    """
    patient = schedule.prescription.patient
    zone = patient.zone
    start = schedule.active_from or schedule.created_at
    after = schedule.planned_until
    if schedule.active_until is not None:
        until = min(until, schedule.active_until)
    first = max(start, after or start).astimezone(zone).date()
    last = until.astimezone(zone).date()
    return [
        PlannedDose(
            patient_id=patient.id,
            prescription_id=schedule.prescription_id,
            schedule_id=schedule.id,
            due_at=slot.due_at,
            deadline=slot.deadline,
            local_date=slot.local_date,
        )
        for slot in expand(schedule, zone, first, last)
        if slot.due_at >= start and (after is None or slot.due_at > after) and slot.due_at < until
    ]


def extend_horizon(
    *, now: dt.datetime, horizon_days: int | None = None, schedules: Iterable[DoseSchedule] | None = None
) -> int:
    """Create the planned doses due up to ``now + horizon``; returns how many rows were made.

    Idempotent and safe on two workers at once: the (schedule, due_at) unique constraint
    drops any slot that already exists. Each schedule is refreshed about once a day.
    """
    days = horizon_days if horizon_days is not None else clinical.get("PLANNING_HORIZON_DAYS")
    target = now + dt.timedelta(days=days)
    rows: list[PlannedDose] = []
    done: list[int] = []
    created = 0
    source = schedules if schedules is not None else _schedules_needing_extension(now, target).iterator(2000)
    for schedule in source:
        rows.extend(_plan_schedule(schedule, target + dt.timedelta(days=1)))
        done.append(schedule.id)
        if len(rows) >= BATCH_SIZE:
            created += _flush(rows, done, target + dt.timedelta(days=1))
            rows, done = [], []
    created += _flush(rows, done, target + dt.timedelta(days=1))
    return created


def _flush(rows: list[PlannedDose], schedule_ids: list[int], until: dt.datetime) -> int:
    if not schedule_ids:
        return 0
    with transaction.atomic():
        made = PlannedDose.objects.bulk_create(rows, batch_size=BATCH_SIZE, ignore_conflicts=True)
        DoseSchedule.objects.filter(id__in=schedule_ids).update(planned_until=until)
    return len(made)


@transaction.atomic
def replan(*, schedules: Iterable[DoseSchedule], now: dt.datetime) -> int:
    """After a change of plan: drop the future pending doses and plan them again.

    Past rows, and any row that already has an outcome, are kept exactly as they were;
    schedules that ended (``active_until``) plan nothing after their end. Returns the
    number of planned doses created.
    """
    ids = [s.id for s in schedules]
    # Strictly after now, matching the re-planning below (which plans after planned_until=now).
    PlannedDose.objects.filter(
        schedule_id__in=ids, status=PlannedDose.Status.PENDING, due_at__gt=now, events__isnull=True
    ).delete()
    DoseSchedule.objects.filter(id__in=ids).update(planned_until=now)
    refreshed = list(
        DoseSchedule.objects.filter(id__in=ids)
        .exclude(kind=DoseSchedule.Kind.PRN)
        .filter(entered_in_error_at__isnull=True, prescription__entered_in_error_at__isnull=True)
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=now))
        .select_related("prescription__drug", "prescription__patient")
    )
    return extend_horizon(now=now, schedules=refreshed)


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The instant a local calendar day begins (midnight always exists in IANA zones we plan in)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def replan_patient(*, patient: Patient, now: dt.datetime) -> int:
    """After the patient's timezone changed: re-plan every current schedule of theirs."""
    return replan(schedules=DoseSchedule.objects.filter(prescription__patient=patient), now=now)
