"""Reads for the clinician's flag worklist: what needs them, most severe and oldest first.

Every function takes an already clinic-scoped ``Flag`` queryset (the admin's), so the
isolation rule lives in one place and these stay plain reads with a fixed query count.
Only ``severity_counts`` reads all of a clinic's unresolved flags on every request, and
PostgreSQL answers it from a small partial index: the page must stay fast at hundreds of
thousands of open flags (docs/benchmarks.md, section 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet

from tracker.models import Flag, Severity
from tracker.selectors.paging import UncountedPage

UNRESOLVED = (Flag.Status.OPEN, Flag.Status.ACKNOWLEDGED)


@dataclass(frozen=True)
class WorklistFilters:
    """Validated filter values; None or empty means "any"."""

    kind: str | None = None
    severity: int | None = None
    patient_id: int | None = None
    patient_words: tuple[str, ...] = ()
    assigned_to_id: int | None = None
    unassigned: bool = False
    status: str | None = None


@dataclass(frozen=True)
class WorklistPage(UncountedPage):
    """One page of the worklist, found without counting every match.

    A clinician works from the top of the list, and the severity counts already give the
    totals; a "page 1 of 3,219" would need a COUNT over every matching flag on each request.
    """

    number: int
    size: int
    flags: list[Flag]
    has_next: bool

    @property
    def items(self) -> list:
        return self.flags


def unresolved(flags: QuerySet[Flag]) -> QuerySet[Flag]:
    # Written as "not resolved" (the same rows: status has three values, see the check
    # constraint) because that is the predicate of the partial indexes on Flag; PostgreSQL
    # reads them without the table only when the query repeats the predicate word for word.
    return flags.exclude(status=Flag.Status.RESOLVED)


def search_words(text: str) -> tuple[str, ...]:
    """The words of a patient search; commas are separators, so "Smith, Ann" is two words."""
    return tuple(text.replace(",", " ").split())


def _patient_matches(word: str) -> Q:
    """Flags whose patient's record number or name starts with ``word`` (any case).

    A name also matches at the start of each of its parts ("Jones" finds "Smith-Jones" and
    "de Jones"). Prefixes, not substrings: a clinician types the beginning of what they read,
    and a substring as short as "an" would match most of a clinic.
    """
    match = Q(patient__record_number__istartswith=word)
    for name in ("patient__family_name", "patient__given_name"):
        match |= Q(**{f"{name}__istartswith": word})
        match |= Q(**{f"{name}__icontains": f" {word}"}) | Q(**{f"{name}__icontains": f"-{word}"})
    return match


def worklist(flags: QuerySet[Flag], filters: WorklistFilters) -> QuerySet[Flag]:
    """Unresolved flags matching ``filters``, most severe first, then the longest waiting.

    ``patient_words`` narrows to patients matching every word (see ``_patient_matches``), so
    "ann smi" finds Ann Smith. Only patients whose flags are in ``flags`` can match, which keeps
    the search inside the clinic the caller scoped ``flags`` to.
    """
    rows = unresolved(flags)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.severity is not None:
        rows = rows.filter(severity=filters.severity)
    if filters.patient_id is not None:
        rows = rows.filter(patient_id=filters.patient_id)
    for word in filters.patient_words:
        rows = rows.filter(_patient_matches(word))
    if filters.unassigned:
        rows = rows.filter(assigned_to__isnull=True)
    elif filters.assigned_to_id is not None:
        rows = rows.filter(assigned_to_id=filters.assigned_to_id)
    if filters.status:
        rows = rows.filter(status=filters.status)
    rows = rows.select_related("patient", "assigned_to__user")
    if filters.patient_words:
        # PostgreSQL cannot estimate how many patients a name matches, and then walks the whole
        # worklist index in order looking for them: over a second at 321,808 open flags when no
        # match has one. Sorting on an expression rules that walk out, so it finds the patients
        # first and sorts their flags: at most one pass over the clinic's open flags (same order).
        return rows.order_by((F("severity") + 0).desc(), "raised_at", "id")
    return rows.order_by("-severity", "raised_at", "id")


def worklist_page(rows: QuerySet[Flag], number: int, size: int) -> WorklistPage:
    """Page ``number`` (from 1) of ``rows`` in one query: one row more than the page tells whether there is a next."""
    start = (number - 1) * size
    fetched = list(rows[start : start + size + 1])
    return WorklistPage(number=number, size=size, flags=fetched[:size], has_next=len(fetched) > size)


def severity_counts(flags: QuerySet[Flag]) -> dict[int, int]:
    """Unresolved flags per severity, most severe first, in one aggregate query.

    It counts ``severity``, not ``id``: needing only severity and patient, PostgreSQL counts
    from the partial index ``tracker_flag_open_by_patient`` without reading the table.
    """
    totals = unresolved(flags).aggregate(
        **{f"s{level}": Count("severity", filter=Q(severity=level)) for level in Severity.values}
    )
    return {level: totals[f"s{level}"] for level in sorted(Severity.values, reverse=True)}
