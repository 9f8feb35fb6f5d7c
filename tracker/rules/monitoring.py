"""Overdue monitoring (§5 schedules): one ``monitor.overdue`` problem per patient and schedule.

Each missed due date is a fact of that problem (``monitor:<schedule>:<date>``), so a patient
who misses week 4 and then week 8 of their antipsychotic weights has one flag with two facts,
not two flags. A measurement that fulfils the schedule answers the facts it covers and
resolves the flag (``services.measurements.answer_monitoring``).

The sweep is set-based: per chunk of patients with an active course, the courses (one
query), the measurements of those under a schedule (one), the facts already raised (one),
then one ``raise_flags``. A fact raised once is never raised again, even after a clinician
closed its flag: the sweep runs twice a day and would otherwise reopen a closed problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tracker import clinical
from tracker.models import FlagFact, FlagKind, Severity
from tracker.rules import loaders
from tracker.rules.base import SweepResult
from tracker.services.flags import NewFact, NewFlag, raise_flags

if TYPE_CHECKING:
    from tracker.selectors.monitoring import ScheduleDue


def problem_key(patient_id: int, schedule: str) -> str:
    return f"{FlagKind.MONITOR_OVERDUE}:patient:{patient_id}:schedule:{schedule}"


def fact_key(schedule: str, due_on: dt.date) -> str:
    """One missed due date of one schedule; unique per patient, as ``answer_facts`` needs."""
    return f"monitor:{schedule}:{due_on.isoformat()}"


def fact_prefix(schedule: str) -> str:
    return f"monitor:{schedule}:"


def overdue_flags(
    dues_by_patient: Mapping[int, Sequence[ScheduleDue]],
    zones: Mapping[int, ZoneInfo],
    raised: set[tuple[str, str]],
    today_of: Mapping[int, dt.date],
) -> list[NewFlag]:
    """A NewFlag per overdue due item past its grace, leaving out facts raised before."""
    grace = dt.timedelta(days=clinical.get("MONITORING_OVERDUE_GRACE_DAYS"))
    flags = []
    for pid, dues in dues_by_patient.items():
        today = today_of[pid]
        for due in dues:
            if not due.due_on + grace < today:
                continue
            key, fkey = problem_key(pid, due.schedule), fact_key(due.schedule, due.due_on)
            if (key, fkey) in raised:
                continue
            flagged_at = dt.datetime.combine(due.due_on + grace, dt.time(0), tzinfo=zones[pid])
            message = (
                f"{due.what} for {due.drug} was due on {due.due_on:%d %b %Y} (§5 monitoring) "
                f"and nothing has been recorded {grace.days} days later."
            )
            flags.append(
                NewFlag(
                    patient_id=pid,
                    kind=FlagKind.MONITOR_OVERDUE,
                    severity=Severity.WARNING,
                    dedup_key=key,
                    message=message,
                    action=f"Arrange the {due.what[0].lower()}{due.what[1:]} and record it on the patient page.",
                    raised_at=flagged_at,
                    title=f"{due.what} ({due.drug})",
                    facts=(NewFact(fkey, message, flagged_at),),
                )
            )
    return flags


def _raised_facts(patient_ids: list[int]) -> set[tuple[str, str]]:
    """(problem key, fact key) of every monitoring fact these patients ever had (one query)."""
    if not patient_ids:
        return set()
    rows = FlagFact.objects.filter(flag__patient_id__in=patient_ids, flag__kind=FlagKind.MONITOR_OVERDUE).values_list(
        "flag__dedup_key", "key"
    )
    return set(rows)


def sweep(*, now: dt.datetime) -> SweepResult:
    """Flag the due items past their grace, for every patient with an active course."""
    # Imported here: tracker.selectors loads tracker.rules (its loaders) on import.
    from tracker.selectors.monitoring import dues_by_patient

    examined = raised = 0
    for patient_ids in loaders.active_patient_ids_in_chunks():
        people = loaders.patients(patient_ids)
        zones = {pid: p.zone for pid, p in people.items()}
        courses = loaders.courses_by_patient(patient_ids)
        dues = dues_by_patient(zones, {pid: courses.get(pid, []) for pid in people}, now=now)
        today_of = {pid: now.astimezone(zones[pid]).date() for pid in dues}
        grace = dt.timedelta(days=clinical.get("MONITORING_OVERDUE_GRACE_DAYS"))
        late = [pid for pid, items in dues.items() if any(d.due_on + grace < today_of[pid] for d in items)]
        examined += len(people)
        raised += raise_flags(overdue_flags(dues, zones, _raised_facts(late), today_of))
    return SweepResult(name="monitoring", examined=examined, flags_raised=raised)
