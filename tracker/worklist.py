"""Reads for the clinician's flag worklist: what needs them, most severe and oldest first.

Every function takes an already clinic-scoped ``Flag`` queryset (the admin's), so the
isolation rule lives in one place and these stay plain reads with a fixed query count.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from tracker.models import Flag, Severity

UNRESOLVED = (Flag.Status.OPEN, Flag.Status.ACKNOWLEDGED)


@dataclass(frozen=True)
class WorklistFilters:
    """Validated filter values; None means "any"."""

    kind: str | None = None
    severity: int | None = None
    patient_id: int | None = None
    assigned_to_id: int | None = None
    unassigned: bool = False
    status: str | None = None


def unresolved(flags: QuerySet[Flag]) -> QuerySet[Flag]:
    return flags.filter(status__in=UNRESOLVED)


def worklist(flags: QuerySet[Flag], filters: WorklistFilters) -> QuerySet[Flag]:
    """Unresolved flags matching ``filters``, most severe first, then the longest waiting."""
    rows = unresolved(flags)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.severity is not None:
        rows = rows.filter(severity=filters.severity)
    if filters.patient_id is not None:
        rows = rows.filter(patient_id=filters.patient_id)
    if filters.unassigned:
        rows = rows.filter(assigned_to__isnull=True)
    elif filters.assigned_to_id is not None:
        rows = rows.filter(assigned_to_id=filters.assigned_to_id)
    if filters.status:
        rows = rows.filter(status=filters.status)
    return rows.select_related("patient", "assigned_to__user").order_by("-severity", "raised_at", "id")


def severity_counts(flags: QuerySet[Flag]) -> dict[int, int]:
    """Unresolved flags per severity, most severe first, in one aggregate query."""
    totals = unresolved(flags).aggregate(
        **{f"s{level}": Count("pk", filter=Q(severity=level)) for level in Severity.values}
    )
    return {level: totals[f"s{level}"] for level in sorted(Severity.values, reverse=True)}


def flagged_patients(flags: QuerySet[Flag]) -> list[tuple[int, str]]:
    """(patient id, label) of patients with unresolved flags, for the patient filter (1 query)."""
    rows = (
        unresolved(flags)
        .order_by("patient__family_name", "patient__given_name", "patient_id")
        .values_list("patient_id", "patient__family_name", "patient__given_name", "patient__record_number")
        .distinct()
    )
    return [(pk, f"{family}, {given} ({number})") for pk, family, given, number in rows]
