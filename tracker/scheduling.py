"""Schedules -> planned doses, in the patient's wall-clock time, stored in UTC.

The DST rule (clinical-reference §7 wall_clock): a schedule's "08:00" is 08:00 local on
every day, whatever the offset. On the spring-forward day a local time that does not
exist (02:30 in New York) is moved forward by the gap (03:30 local); on the fall-back day
a time that occurs twice (01:30) means its first occurrence. Both rules are what Python's
``zoneinfo`` gives for ``fold=0``, so each local slot yields exactly one instant.

Planned doses are generated ahead over a rolling horizon. Rows in the past are history
and are never rewritten; when the plan changes (dose, times, the patient's zone) only the
pending rows still in the future are replaced.

The horizon job plans tens of thousands of doses a run at 10,000 patients, so its hot path
avoids model instances: schedules are read as ``values_list`` rows into ``Rule`` records,
schedules with the same plan share one expansion, slots become plain tuples, and on
PostgreSQL each batch is written by binary COPY into a temporary table and one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` (docs/benchmarks.md, "Horizon extension").
Elsewhere (SQLite, the embedded default) the same rows go through ``bulk_create``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import DateField, ExpressionWrapper, F, Q, QuerySet

from tracker import clinical
from tracker.models import DoseSchedule, Patient, PlannedDose

UTC = dt.UTC
BATCH_SIZE = 5000


class ScheduleLike(Protocol):
    """What a preview reads of a schedule not yet saved (services.prescriptions.ScheduleSpec)."""

    kind: str
    times_of_day: Sequence[str]
    weekdays: Sequence[int]
    interval_days: int
    start_date: dt.date | None
    end_date: dt.date | None


class Slot(NamedTuple):
    due_at: dt.datetime
    deadline: dt.datetime
    local_date: dt.date


class Rule(NamedTuple):
    """What expansion reads of a schedule, its prescription and its drug.

    A plain record rather than the models so the horizon job can build it from one
    ``values_list`` row: four model instances per schedule cost more than its expansion.
    """

    kind: str
    times: tuple[tuple[int, int], ...]  # local (hour, minute), sorted
    weekdays: frozenset[int]
    interval_days: int
    anchor: dt.date  # the schedule's start: every-N-days counts from it
    start: dt.date  # the later of the schedule's and the prescription's start
    end: dt.date | None  # the earlier of their ends
    grace: dt.timedelta  # the drug class default (§7 grace)

    @classmethod
    def build(
        cls,
        *,
        kind: str,
        times_of_day: Iterable[str],
        weekdays: Iterable[int],
        interval_days: int,
        start_date: dt.date,
        end_date: dt.date | None,
        rx_start_date: dt.date,
        rx_end_date: dt.date | None,
        drug_class: str,
    ) -> Rule:
        ends = [d for d in (end_date, rx_end_date) if d is not None]
        return cls(
            kind=kind,
            times=tuple(sorted(_hour_minute(hhmm) for hhmm in times_of_day)),
            weekdays=frozenset(weekdays or ()),
            interval_days=interval_days,
            anchor=start_date,
            start=max(start_date, rx_start_date),
            end=min(ends) if ends else None,
            grace=clinical.grace_for_class(drug_class),
        )

    @classmethod
    def of(cls, schedule: DoseSchedule) -> Rule:
        rx = schedule.prescription
        return cls.build(
            kind=schedule.kind,
            times_of_day=schedule.times_of_day,
            weekdays=schedule.weekdays,
            interval_days=schedule.interval_days,
            start_date=schedule.start_date,
            end_date=schedule.end_date,
            rx_start_date=rx.start_date,
            rx_end_date=rx.end_date,
            drug_class=rx.drug.drug_class,
        )


def _hour_minute(hhmm: str) -> tuple[int, int]:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return hour, minute


def _instant(day: dt.date, hour: int, minute: int, zone: ZoneInfo) -> dt.datetime:
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0
    # Round-trip through UTC so a non-existent time comes back as the shifted wall time.
    return local.astimezone(UTC)


def local_instant(day: dt.date, hhmm: str, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of wall-clock ``hhmm`` on ``day`` in ``zone`` (DST rule above)."""
    return _instant(day, *_hour_minute(hhmm), zone)


def dose_days(rule: Rule, first: dt.date, last: dt.date) -> Iterator[dt.date]:
    """The local dates in [first, last] on which the rule has doses."""
    stop = last if rule.end is None else min(last, rule.end)
    day = max(first, rule.start)
    one_day = dt.timedelta(days=1)
    while day <= stop:
        if rule.kind == DoseSchedule.Kind.DAILY:
            yield day
        elif rule.kind == DoseSchedule.Kind.WEEKDAYS:
            if day.weekday() in rule.weekdays:
                yield day
        elif rule.kind == DoseSchedule.Kind.EVERY_N_DAYS:
            if (day - rule.anchor).days % rule.interval_days == 0:
                yield day
        day += one_day


def expand(schedule: DoseSchedule, zone: ZoneInfo, first: dt.date, last: dt.date) -> list[Slot]:
    """Slots of ``schedule`` on local dates [first, last], each with its deadline.

    Deadline = due + grace, grace = min(class default, half the interval to the next
    dose) (§7 grace), so a missed morning dose is flagged before the evening one is due.
    PRN schedules have no slots: an as-needed dose is never missed.
    """
    return expand_rule(Rule.of(schedule), zone, first, last)


def _lookahead_end(rule: Rule, last: dt.date) -> dt.date:
    return last + dt.timedelta(days=max(rule.interval_days, 7) + 1)


def shared_rule(rule: Rule, first: dt.date, last: dt.date) -> Rule:
    """``rule`` with each field that cannot change its slots on [first, last] made common.

    Schedules that differ only in when they started, in an end beyond the look-ahead, or in
    fields their kind ignores then expand once per horizon run: a clinic has a few hundred
    distinct plans (zone, kind, times, class) for tens of thousands of schedules.
    """
    start = max(rule.start, first)  # dose_days() starts at the later of the two anyway
    end = rule.end if rule.end is not None and rule.end < _lookahead_end(rule, last) else None
    return rule._replace(
        start=start,
        end=end,
        anchor=rule.anchor if rule.kind == DoseSchedule.Kind.EVERY_N_DAYS else start,
        weekdays=rule.weekdays if rule.kind == DoseSchedule.Kind.WEEKDAYS else frozenset(),
    )


def expand_rule(rule: Rule, zone: ZoneInfo, first: dt.date, last: dt.date) -> list[Slot]:
    """``expand()`` for a ``Rule``: what the horizon job calls, with no model at hand."""
    if rule.kind == DoseSchedule.Kind.PRN:
        return []
    # The dose after the window's final one sets that dose's grace, so read on past `last`
    # (at most the longest gap between dose days) up to the next two dose days. Two: where
    # a DST gap straddles midnight the second day's first dose can come before the first
    # day's last; a later day is at least a whole day further on and cannot.
    instants: list[tuple[dt.datetime, dt.date]] = []
    days_after = 0
    for day in dose_days(rule, first, _lookahead_end(rule, last)):
        if day > last:
            days_after += 1
            if days_after > 2:
                break
        instants.extend((_instant(day, hour, minute, zone), day) for hour, minute in rule.times)
    # On the spring-forward day two local times can land on one instant (02:30 and 03:30
    # in New York); keep one, so the other's grace is not cut to zero.
    instants = sorted(dict.fromkeys(instants))
    slots = []
    for index, (due_at, day) in enumerate(instants):
        if day > last:
            break
        grace = rule.grace
        if index + 1 < len(instants):
            grace = min(grace, (instants[index + 1][0] - due_at) / 2)
        slots.append(Slot(due_at, due_at + grace, day))
    return slots


def preview(
    *,
    specs: Iterable[ScheduleLike],
    zone: ZoneInfo,
    rx_start_date: dt.date,
    rx_end_date: dt.date | None,
    drug_class: str,
    after: dt.datetime,
    count: int = 8,
) -> list[dt.datetime]:
    """The next ``count`` due instants (UTC) that ``specs`` would plan after ``after``, not saved.

    The prescribing form shows these before anything is stored, through the same expansion
    the horizon job uses, so the preview and the plan cannot disagree (DST included).
    """
    first = max(rx_start_date, after.astimezone(zone).date())
    # Far enough for the sparsest regimen a form offers (every 2 weeks after an 8-week start).
    last = first + dt.timedelta(days=max(clinical.get("PLANNING_HORIZON_DAYS"), 7 * 16))
    instants: set[dt.datetime] = set()
    for spec in specs:
        rule = Rule.build(
            kind=spec.kind,
            times_of_day=spec.times_of_day,
            weekdays=spec.weekdays,
            interval_days=spec.interval_days,
            start_date=spec.start_date or rx_start_date,
            end_date=spec.end_date,
            rx_start_date=rx_start_date,
            rx_end_date=rx_end_date,
            drug_class=drug_class,
        )
        instants.update(slot.due_at for slot in expand_rule(rule, zone, first, last) if slot.due_at >= after)
    return sorted(instants)[:count]


class _Target(NamedTuple):
    """One schedule to plan: its keys, the patient's zone, the window it may plan in, its rule."""

    schedule_id: int
    prescription_id: int
    patient_id: int
    zone: ZoneInfo
    since: dt.datetime  # no dose before the plan existed: active_from, else created_at
    planned_until: dt.datetime | None
    active_until: dt.datetime | None
    rule: Rule


# What _targets_needing_extension() reads: the _Target fields before its rule, in order, then
# Rule.build()'s arguments and where each comes from.
_TARGET_FIELDS = (
    "id",
    "prescription_id",
    "prescription__patient_id",
    "prescription__patient__timezone",
    "active_from",
    "created_at",
    "planned_until",
    "active_until",
)
_RULE_FIELDS = {
    "kind": "kind",
    "times_of_day": "times_of_day",
    "weekdays": "weekdays",
    "interval_days": "interval_days",
    "start_date": "start_date",
    "end_date": "end_date",
    "rx_start_date": "prescription__start_date",
    "rx_end_date": "prescription__end_date",
    "drug_class": "prescription__drug__drug_class",
}


def _target_of(schedule: DoseSchedule) -> _Target:
    return _Target(
        schedule_id=schedule.id,
        prescription_id=schedule.prescription_id,
        patient_id=schedule.prescription.patient_id,
        zone=schedule.prescription.patient.zone,
        since=schedule.active_from or schedule.created_at,
        planned_until=schedule.planned_until,
        active_until=schedule.active_until,
        rule=Rule.of(schedule),
    )


# A local end date's last dose lies before this many days after it, in UTC, in any zone
# (UTC-12 to UTC+14): a schedule planned that far is planned to its end.
END_DATE_MARGIN = dt.timedelta(days=2)


def _not_planned_to(end: str) -> Q:
    """The schedule's plan stops short of the local date ``end`` (or there is no such end)."""
    reach = ExpressionWrapper(F(end) + END_DATE_MARGIN, output_field=DateField())
    return Q(**{f"{end}__isnull": True}) | Q(planned_until__isnull=True) | Q(planned_until__date__lt=reach)


def _schedules_needing_extension(now: dt.datetime, target: dt.datetime) -> QuerySet[DoseSchedule]:
    """Schedules whose plan ends before the horizon and before their own end.

    A schedule is left alone once it is planned to its end, however long ago it ended;
    one whose end passed while nothing was planning (beat down for a week) is still
    planned up to its end, so its doses are judged like any other.
    """
    refresh_before = target - dt.timedelta(days=1)
    return (
        DoseSchedule.objects.current()
        .exclude(kind=DoseSchedule.Kind.PRN)
        .filter(prescription__entered_in_error_at__isnull=True, prescription__patient__is_active=True)
        .filter(Q(planned_until__isnull=True) | Q(planned_until__lt=refresh_before))
        .filter(Q(active_until__isnull=True) | Q(planned_until__isnull=True) | Q(active_until__gt=F("planned_until")))
        .filter(_not_planned_to("end_date"))
        .filter(_not_planned_to("prescription__end_date"))
        .order_by("id")
    )


def _targets_needing_extension(now: dt.datetime, target: dt.datetime) -> Iterator[_Target]:
    query = _schedules_needing_extension(now, target).values_list(*_TARGET_FIELDS, *_RULE_FIELDS.values())
    split = len(_TARGET_FIELDS)
    for row in query.iterator(2000):
        (
            schedule_id,
            prescription_id,
            patient_id,
            timezone_name,
            active_from,
            created_at,
            planned_until,
            active_until,
        ) = row[:split]
        rule = Rule.build(**dict(zip(_RULE_FIELDS, row[split:], strict=True)))
        since = active_from or created_at
        yield _Target(
            schedule_id, prescription_id, patient_id, ZoneInfo(timezone_name), since, planned_until, active_until, rule
        )


# A planned dose as it is written: the columns below, in order (with their PostgreSQL types
# for binary COPY). status and status_changed_at are the model's defaults, filled per batch.
PlannedRow = tuple[int, int, int, dt.datetime, dt.datetime, dt.date]
PLANNED_COLUMNS = ("patient_id", "prescription_id", "schedule_id", "due_at", "deadline", "local_date")
_COPY_TYPES = ("int8", "int8", "int8", "timestamptz", "timestamptz", "date")
DEFAULTED_COLUMNS = ("status", "status_changed_at")


Expand = Callable[[Rule, ZoneInfo, dt.date, dt.date], list[Slot]]


def _plan(target: _Target, until: dt.datetime, expand_shared: Expand) -> list[PlannedRow]:
    """New planned doses for ``target`` after its ``planned_until``, up to ``until``.

    Never before the plan existed (``active_from``, else ``created_at``): a plan entered
    today must not turn last week's unlogged doses into false "missed" flags. Never after
    ``active_until``: a replaced or stopped plan plans nothing more. ``expand_shared`` is
    ``expand_rule`` behind a cache; its slots are shared, so they are read, never changed.
    """
    start, after, zone = target.since, target.planned_until, target.zone
    if target.active_until is not None:
        until = min(until, target.active_until)
    first = max(start, after or start).astimezone(zone).date()
    last = until.astimezone(zone).date()
    keys = (target.patient_id, target.prescription_id, target.schedule_id)
    return [
        (*keys, *slot)
        for slot in expand_shared(shared_rule(target.rule, first, last), zone, first, last)
        if slot.due_at >= start and (after is None or slot.due_at > after) and slot.due_at < until
    ]


def _horizon_until(now: dt.datetime, days: int) -> dt.datetime:
    """Planned doses are made up to a day past the horizon, so a daily refresh never leaves a gap."""
    return now + dt.timedelta(days=days + 1)


def extend_horizon(
    *, now: dt.datetime, horizon_days: int | None = None, schedules: Iterable[DoseSchedule] | None = None
) -> int:
    """Create the planned doses due up to ``now + horizon``; returns how many rows were made.

    Idempotent and safe on two workers at once: the (schedule, due_at) unique constraint
    drops any slot that already exists. Each schedule is refreshed about once a day. On
    PostgreSQL the count is of rows inserted; bulk_create (elsewhere) cannot tell, so there
    it counts the slots offered, conflicts included.
    """
    days = horizon_days if horizon_days is not None else clinical.get("PLANNING_HORIZON_DAYS")
    target = now + dt.timedelta(days=days)
    until = _horizon_until(now, days)
    if schedules is not None:
        targets: Iterable[_Target] = (_target_of(schedule) for schedule in schedules)
    else:
        targets = _targets_needing_extension(now, target)
    # One cache per run, so nothing outlives the call; a clinic has far fewer distinct plans.
    expand_shared: Expand = functools.lru_cache(maxsize=1024)(expand_rule)
    rows: list[PlannedRow] = []
    done: list[int] = []
    created = 0
    for planned in targets:
        rows.extend(_plan(planned, until, expand_shared))
        done.append(planned.schedule_id)
        if len(rows) >= BATCH_SIZE:
            created += _flush(rows, done, until)
            rows, done = [], []
    created += _flush(rows, done, until)
    return created


def _flush(rows: list[PlannedRow], schedule_ids: list[int], until: dt.datetime) -> int:
    if not schedule_ids:
        return 0
    with transaction.atomic():
        made = _insert(rows) if rows else 0
        DoseSchedule.objects.filter(id__in=schedule_ids).update(planned_until=until)
    return made


def _insert(rows: list[PlannedRow]) -> int:
    if connection.vendor == "postgresql":  # psycopg 3 (requirements.txt): its cursor has copy()
        return _insert_by_copy(rows)
    return _insert_by_orm(rows)


def _insert_by_orm(rows: list[PlannedRow]) -> int:
    """The portable path: one model per row, so every default is the model's own."""
    made = PlannedDose.objects.bulk_create(
        [PlannedDose(**dict(zip(PLANNED_COLUMNS, row, strict=True))) for row in rows],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )
    return len(made)


def _insert_by_copy(rows: list[PlannedRow]) -> int:
    """PostgreSQL: binary COPY into a temporary table, then one INSERT … SELECT.

    COPY cannot skip conflicts, so the rows land in a scratch table first and the INSERT
    keeps the (schedule, due_at) constraint as the guard. status and status_changed_at come
    from the model's field defaults, as bulk_create would fill them (one instant per batch
    rather than one per row). The COPY goes round Django's cursor wrapper, so it is not in
    ``connection.queries``; the three statements around it are.
    """
    columns = ", ".join(PLANNED_COLUMNS)
    defaults = [PlannedDose._meta.get_field(name).get_default() for name in DEFAULTED_COLUMNS]
    with connection.cursor() as cursor:
        # Column types copied from the real table; dropped below, or at commit if an error
        # skips that.
        cursor.execute(
            f"CREATE TEMPORARY TABLE planned_dose_batch ON COMMIT DROP AS "  # noqa: S608 - fixed names only
            f"SELECT {columns} FROM tracker_planneddose WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY planned_dose_batch ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_COPY_TYPES))
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO tracker_planneddose ({columns}, {', '.join(DEFAULTED_COLUMNS)}) "  # noqa: S608
            # No conflict target: the one unique constraint is partial (live rows only).
            f"SELECT {columns}, %s, %s FROM planned_dose_batch ON CONFLICT DO NOTHING",
            defaults,
        )
        made = cursor.rowcount
        cursor.execute("DROP TABLE planned_dose_batch")
    return made


@transaction.atomic
def replan(*, schedules: Iterable[DoseSchedule], now: dt.datetime) -> int:
    """After a change of plan: plan the future again, withdrawing what the new plan drops.

    Past rows, and any row that already has an outcome, are kept exactly as they were.
    Future pending rows the new plan still wants stay; the others are withdrawn (cancelled,
    never deleted: a planned dose is a clinical record). A local day that already had its
    doses (a time-zone change at noon, after the morning dose) gets no second one.
    Schedules that ended (``active_until``) plan nothing after their end. Returns the
    number of planned doses created.
    """
    ids = [s.id for s in schedules]
    DoseSchedule.objects.filter(id__in=ids).update(planned_until=now)
    refreshed = list(
        DoseSchedule.objects.filter(id__in=ids)
        .exclude(kind=DoseSchedule.Kind.PRN)
        .filter(entered_in_error_at__isnull=True, prescription__entered_in_error_at__isnull=True)
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=now))
        .select_related("prescription__drug", "prescription__patient")
    )
    until = _horizon_until(now, clinical.get("PLANNING_HORIZON_DAYS"))
    expand_shared: Expand = functools.lru_cache(maxsize=1024)(expand_rule)
    targets = [_target_of(schedule) for schedule in refreshed]
    wanted = [row for target in targets for row in _plan(target, until, expand_shared)]
    live = PlannedDose.objects.filter(schedule_id__in=ids).exclude(status=PlannedDose.Status.CANCELLED)
    # Strictly after now, matching the planning above (which plans after planned_until=now).
    future = {
        (schedule_id, due_at): (pk, local_date)
        for pk, schedule_id, due_at, local_date in live.filter(
            status=PlannedDose.Status.PENDING, due_at__gt=now, events__isnull=True
        ).values_list("id", "schedule_id", "due_at", "local_date")
    }
    wanted_at = {(row[2], row[3]): row for row in wanted}
    withdrawn = [pk for key, (pk, _day) in future.items() if key not in wanted_at]
    PlannedDose.objects.filter(pk__in=withdrawn).update(status=PlannedDose.Status.CANCELLED, status_changed_at=now)
    # A kept row's local day follows the zone it is now planned in.
    moved = [
        PlannedDose(pk=pk, local_date=wanted_at[key][5])
        for key, (pk, day) in future.items()
        if key in wanted_at and wanted_at[key][5] != day
    ]
    PlannedDose.objects.bulk_update(moved, ["local_date"])
    new = [row for row in wanted if (row[2], row[3]) not in future]
    new = _skip_days_already_dosed(new, live.exclude(pk__in=[pk for pk, _day in future.values()]), targets)
    return _flush(new, [target.schedule_id for target in targets], until)


def _skip_days_already_dosed(
    rows: list[PlannedRow], kept: QuerySet[PlannedDose], targets: list[_Target]
) -> list[PlannedRow]:
    """Drop new rows of a local day that already has its doses from before the change.

    ``kept`` are the schedules' live rows that stay as they were (past, or with an outcome).
    Counted per schedule and local day in the zone now planned in, a day that had n doses
    loses its first n new ones: moving from London to New York at noon, after the 08:00
    dose, does not plan 08:00 New York the same day.
    """
    if not rows:
        return rows
    zones = {target.schedule_id: target.zone for target in targets}
    first_day = min(row[3] for row in rows) - dt.timedelta(days=1)
    had: dict[tuple[int, dt.date], int] = {}
    for schedule_id, due_at in kept.filter(due_at__gte=first_day).values_list("schedule_id", "due_at"):
        key = (schedule_id, due_at.astimezone(zones[schedule_id]).date())
        had[key] = had.get(key, 0) + 1
    planned: list[PlannedRow] = []
    for row in sorted(rows, key=lambda r: (r[2], r[3])):
        key = (row[2], row[5])
        if had.get(key, 0) > 0:
            had[key] -= 1
            continue
        planned.append(row)
    return planned


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The instant a local calendar day begins (midnight always exists in IANA zones we plan in)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def replan_patient(*, patient: Patient, now: dt.datetime) -> int:
    """After the patient's timezone changed: re-plan every current schedule of theirs."""
    return replan(schedules=DoseSchedule.objects.filter(prescription__patient=patient), now=now)
