"""Overdue monitoring (§5 schedules): one ``monitor.overdue`` problem per patient and schedule.

Each missed due date is a fact of that problem (``monitor:<schedule>:<date>``), so a patient
who misses week 4 and then week 8 of their antipsychotic weights has one flag with two facts,
not two flags. A date is missed when its own window has closed with a measure of the
schedule still owed (``tracker.monitoring.DueWindow``): FIBSER's week 2 is flagged when week
2's window closes, not skipped because week 4's has opened. A measurement that fulfils the
schedule answers the facts it covers and resolves the flag
(``services.measurements.answer_monitoring``); the sweep answers, with the same call, any
open fact whose date it no longer finds missed (a measurement that raced it, a stopped course),
so the patients it reads are those with an active course or an open monitoring fact.

The sweep is set-based: per chunk of patients with an active course, the courses (one
query), the measurements of those under a schedule (one), the facts already raised (one),
then one ``raise_flags``. A fact raised once and still unanswered is never raised again, even
after a clinician closed its flag: the sweep runs twice a day and would otherwise reopen a
closed problem. A fact that was answered and whose date is missed again (the measurement
that answered it was entered in error) is owed again: reopened in its open flag, or raised
anew when its flag was resolved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db.models import Q

from tracker.models import Flag, FlagFact, FlagKind, Patient, Prescription, Severity
from tracker.rules import loaders
from tracker.rules.base import SweepResult
from tracker.services.flags import NewFact, NewFlag, raise_flags
from tracker.services.measurements import answer_stale_monitoring, reopen_monitoring_facts

if TYPE_CHECKING:
    from tracker.selectors.monitoring import MissedDue


def problem_key(patient_id: int, schedule: str) -> str:
    return f"{FlagKind.MONITOR_OVERDUE}:patient:{patient_id}:schedule:{schedule}"


def fact_key(schedule: str, due_on: dt.date) -> str:
    """One missed due date of one schedule; unique per patient, as ``answer_facts`` needs."""
    return f"monitor:{schedule}:{due_on.isoformat()}"


def fact_prefix(schedule: str) -> str:
    return f"monitor:{schedule}:"


@dataclass(frozen=True)
class RaisedFact:
    """A monitoring fact on record: its id, whether a measurement answered it, whether its flag is open."""

    id: int
    answered: bool
    flag_open: bool
    patient_id: int


def overdue_flags(
    missed_by_patient: Mapping[int, Sequence[MissedDue]],
    zones: Mapping[int, ZoneInfo],
    raised: Mapping[tuple[str, str], Sequence[RaisedFact]],
) -> tuple[list[NewFlag], list[int]]:
    """A NewFlag per missed due date not raised before, and the ids of answered facts owed again.

    A missed date with an unanswered fact on record is left alone (open, or closed by a
    clinician). One whose facts were all answered has lost what answered it: its fact in an
    open flag is reopened, and with none open it is raised anew.
    """
    flags: list[NewFlag] = []
    reopen: list[int] = []
    for pid, items in missed_by_patient.items():
        for due in items:
            key, fkey = problem_key(pid, due.schedule), fact_key(due.schedule, due.due_on)
            on_record = raised.get((key, fkey), ())
            if any(not fact.answered for fact in on_record):
                continue
            if in_open := [fact.id for fact in on_record if fact.flag_open]:
                reopen += in_open
                continue
            flags.append(overdue_flag(pid, due, zones[pid]))
    return flags, reopen


def overdue_flag(patient_id: int, due: MissedDue, zone: ZoneInfo) -> NewFlag:
    """The problem and fact of one missed date, raised at the start of the day after its last day."""
    flagged_at = dt.datetime.combine(due.last_day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    message = (
        f"{due.what} for {due.drug} was due on {due.due_on:%d %b %Y} (§5 monitoring) "
        f"and nothing had been recorded by {due.last_day:%d %b %Y}."
    )
    return NewFlag(
        patient_id=patient_id,
        kind=FlagKind.MONITOR_OVERDUE,
        severity=Severity.WARNING,
        dedup_key=problem_key(patient_id, due.schedule),
        message=message,
        action=f"Arrange the {due.what[0].lower()}{due.what[1:]} and record it on the patient page.",
        raised_at=flagged_at,
        title=f"{due.what} ({due.drug})",
        facts=(NewFact(fact_key(due.schedule, due.due_on), message, flagged_at),),
    )


def stale_facts(
    missed_by_patient: Mapping[int, Sequence[MissedDue]], raised: Mapping[tuple[str, str], Sequence[RaisedFact]]
) -> dict[int, list[str]]:
    """Per patient, the fact keys of unanswered facts whose date is no longer missed.

    A measurement that committed while the sweep raised its fact found nothing to answer,
    and a stopped course's dates are no longer followed: both would stay open for ever.
    """
    still = {
        (problem_key(pid, due.schedule), fact_key(due.schedule, due.due_on))
        for pid, items in missed_by_patient.items()
        for due in items
    }
    stale: dict[int, list[str]] = {}
    for (problem, key), on_record in raised.items():
        if (problem, key) not in still and (open_ := [f for f in on_record if not f.answered]):
            stale.setdefault(open_[0].patient_id, []).append(key)
    return stale


def _raised_facts(patient_ids: list[int]) -> dict[tuple[str, str], list[RaisedFact]]:
    """Every monitoring fact these patients ever had, by (problem key, fact key): one query."""
    found: dict[tuple[str, str], list[RaisedFact]] = {}
    if not patient_ids:
        return found
    rows = FlagFact.objects.filter(flag__patient_id__in=patient_ids, flag__kind=FlagKind.MONITOR_OVERDUE).values_list(
        "id", "flag__dedup_key", "key", "answered_at", "flag__status", "flag__patient_id"
    )
    for pk, problem, key, answered_at, status, patient_id in rows:
        found.setdefault((problem, key), []).append(
            RaisedFact(pk, answered_at is not None, status != Flag.Status.RESOLVED, patient_id)
        )
    return found


def _patient_ids_in_chunks(chunk: int = 2000) -> Iterator[list[int]]:
    """Ids of the patients to sweep, in chunks: those with an active course, and those with an
    unanswered monitoring fact (a course stopped with dates owed: their facts are answered)."""
    last = 0
    while True:
        active = Prescription.objects.current().filter(
            status=Prescription.Status.ACTIVE, patient_id__gt=last, patient__is_active=True
        )
        owing = FlagFact.objects.filter(
            flag__kind=FlagKind.MONITOR_OVERDUE, flag__patient_id__gt=last, answered_at__isnull=True
        )
        ids = list(
            Patient.objects.filter(
                Q(pk__in=active.values("patient_id")) | Q(pk__in=owing.values("flag__patient_id")), pk__gt=last
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def sweep(*, now: dt.datetime) -> SweepResult:
    """Flag the due dates whose window closed with nothing recorded, for every patient with an active course."""
    # Imported here: tracker.selectors loads tracker.rules (its loaders) on import.
    from tracker.selectors.monitoring import missed_by_patient

    examined = raised = 0
    for patient_ids in _patient_ids_in_chunks():
        people = loaders.patients(patient_ids)
        zones = {pid: p.zone for pid, p in people.items()}
        courses = loaders.courses_by_patient(patient_ids)
        missed = missed_by_patient(zones, {pid: courses.get(pid, []) for pid in people}, now=now)
        on_record = _raised_facts(list(people))
        flags, reopen = overdue_flags(missed, zones, on_record)
        examined += len(people)
        raised += raise_flags(flags)
        if reopen:
            reopen_monitoring_facts(reopen, zones, now=now)
        if stale := stale_facts(missed, on_record):
            answer_stale_monitoring(stale, zones, now=now)
    return SweepResult(name="monitoring", examined=examined, flags_raised=raised)
