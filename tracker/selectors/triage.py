"""The triage worklist: one row per patient with open problems, the most important first.

A clinician triages patients, not flags: the page ranks each patient by their most
important open flag (severity, then the [P] clinical priority within a severity,
``clinical.TRIAGE_PRIORITY``, then how long it has waited), and the row says every open
problem of the patient in a few words. Good news (response, remission:
``clinical.GOOD_NEWS_KINDS``) is not work and stays off the default view.

Three queries whatever the clinic's size: the page of patients, ranked in SQL by a
correlated probe of the ``tracker_flag_open_triage`` index per patient and cut at
``size + 1`` rows (no COUNT); the open flags of those patients; and the count of patients
with open problems. Every function takes an already clinic-scoped ``Flag`` queryset (the
admin's), so the isolation rule lives in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from tracker import clinical
from tracker.models import Flag, FlagKind, Patient, Severity
from tracker.selectors.paging import UncountedPage
from tracker.worklist import unresolved

# Problems whose headline counts the facts behind them, and what one fact is called.
COUNTED = {
    FlagKind.DOSE_MISSED: ("dose", "doses", "missed"),
    FlagKind.DOSE_MISSED_REPEATED: ("dose", "doses", "missed"),
    FlagKind.ESK_SESSION_MISSED: ("session", "sessions", "missed"),
}


@dataclass(frozen=True)
class TriageRow:
    """One patient on the worklist, with the open flags behind the row, most important first."""

    patient: Patient
    flags: list[Flag]

    @property
    def top(self) -> Flag:
        return self.flags[0]

    @property
    def waiting_since(self) -> dt.datetime:
        return min(flag.raised_at for flag in self.flags)

    @property
    def headlines(self) -> list[str]:
        return [headline(flag, self.patient.zone) for flag in self.flags]

    @property
    def note_required(self) -> bool:
        """Closing this row needs a note: one of its flags is urgent or critical."""
        return any(flag.severity >= Severity.URGENT for flag in self.flags)

    @property
    def all_acknowledged(self) -> bool:
        return all(flag.status == Flag.Status.ACKNOWLEDGED for flag in self.flags)

    @property
    def flag_ids(self) -> list[int]:
        return [flag.pk for flag in self.flags]


@dataclass(frozen=True)
class TriagePage(UncountedPage):
    number: int
    size: int
    rows: list[TriageRow]
    has_next: bool

    @property
    def items(self) -> list:
        return self.rows


def work(flags: QuerySet[Flag], *, good_news: bool = False) -> QuerySet[Flag]:
    """The unresolved flags that are work; with ``good_news``, response and remission too."""
    rows = unresolved(flags)
    return rows if good_news else rows.exclude(kind__in=clinical.get("GOOD_NEWS_KINDS"))


def triage_page(
    flags: QuerySet[Flag], patients: QuerySet[Patient], number: int, size: int, *, good_news: bool = False
) -> TriagePage:
    """Page ``number`` (from 1) of the patients with open work in ``flags``, ranked; see the module docstring.

    ``flags`` may be filtered (a kind, an assignee, a patient search): a patient is ranked
    by, and shows, only the flags that match.
    """
    considered = work(flags, good_news=good_news)
    top = considered.filter(patient=OuterRef("pk")).order_by("-severity", "-priority", "raised_at", "id")
    ranked = (
        patients.filter(Exists(considered.filter(patient=OuterRef("pk"))))
        .annotate(
            top_severity=Subquery(top.values("severity")[:1]),
            top_priority=Subquery(top.values("priority")[:1]),
            top_raised=Subquery(top.values("raised_at")[:1]),
        )
        .order_by("-top_severity", "-top_priority", "top_raised", "pk")
    )
    start = (number - 1) * size
    page_patients = list(ranked[start : start + size + 1])
    has_next = len(page_patients) > size
    page_patients = page_patients[:size]
    behind: dict[int, list[Flag]] = {p.pk: [] for p in page_patients}
    for flag in (
        considered.filter(patient__in=[p.pk for p in page_patients])
        .select_related("assigned_to__user")
        .order_by("-severity", "-priority", "raised_at", "id")
    ):
        behind[flag.patient_id].append(flag)
    rows = []
    for patient in page_patients:
        for flag in behind[patient.pk]:
            flag.patient = patient  # the page's own patient row: no query per flag
        rows.append(TriageRow(patient=patient, flags=behind[patient.pk]))
    return TriagePage(number=number, size=size, rows=rows, has_next=has_next)


def patients_with_work(flags: QuerySet[Flag]) -> int:
    """How many patients have open work (one aggregate over the partial triage index)."""
    return work(flags).values("patient").distinct().count()


def good_news_count(flags: QuerySet[Flag]) -> int:
    """Open response and remission milestones, which the default view leaves out."""
    return unresolved(flags).filter(kind__in=clinical.get("GOOD_NEWS_KINDS")).count()


def headline(flag: Flag, zone: ZoneInfo) -> str:
    """The problem in words a clinician scans, e.g. "Sertraline 50 mg: 5 doses missed since 28 Nov, 3 in a row"."""
    counted = COUNTED.get(flag.kind)
    if counted is not None:
        one, many, verb = counted
        since = f"{flag.raised_at.astimezone(zone):%d %b}"
        words = f"{flag.title or flag.get_kind_display()}: "
        if flag.occurrences == 1:
            words += f"1 {one} {verb} ({since})"
        else:
            words += f"{flag.occurrences} {many} {verb} since {since}"
        if flag.streak and flag.streak > 1:
            words += f", {flag.streak} in a row"
        return words
    if flag.title:
        return flag.title
    words = flag.get_kind_display()
    return f"{words} ({flag.occurrences} times)" if flag.occurrences > 1 else words


def flags_of_rows(flags: QuerySet[Flag], patient_id: int, ids: Sequence[int]) -> QuerySet[Flag]:
    """The unresolved flags of one patient among ``ids``: what a row's action acts on.

    The ids are those the clinician saw when the page was drawn, so a flag raised since then
    is not closed unseen.
    """
    return unresolved(flags).filter(Q(patient_id=patient_id) & Q(pk__in=list(ids)))
