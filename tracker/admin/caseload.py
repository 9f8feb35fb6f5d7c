"""The caseload page (``…/patient/caseload/``): every patient of the clinic and where their course stands.

A thin view: it validates the query string, scopes the patients to the user's clinic and
hands both to ``tracker.selectors.caseload``, which sorts, filters and pages in SQL and
computes the page's details. Bad parameters never fail the page: an unknown sort is the
default order, a page that is not a number is the first, and an invalid filter is shown as
an error beside an unfiltered list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from tracker import clinical, scales
from tracker.admin.scoping import clinician_for, restrict_to_clinic
from tracker.models import Clinician, Patient, Severity
from tracker.selectors import caseload
from tracker.selectors.caseload import CaseloadFilters, Sort, Status

if TYPE_CHECKING:
    from tracker.admin.patients import PatientAdmin

CASELOAD_TEMPLATE = "admin/tracker/caseload.html"
MAX_PAGE = 10_000  # keeps OFFSET a sane integer: a 30-digit page would be a database error
UNASSIGNED = "none"
SPARK_WIDTH, SPARK_HEIGHT = 64, 18


class CaseloadFilterForm(forms.Form):
    """GET filters; clinicians are those of the user's clinic only (an id outside is a form error)."""

    q = forms.CharField(
        required=False,
        max_length=100,
        label="Patient",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Record number or name", "size": 22}),
    )
    status = forms.ChoiceField(
        required=False, label="Status", choices=[("", "Any status"), *((s.value, s.label) for s in Status)]
    )
    band = forms.ChoiceField(
        required=False,
        label="PHQ-9 band",
        choices=[("", "Any band"), *((b.label, f"{b.label} ({b.low}–{b.high})") for b in scales.PHQ9.bands)],
    )
    clinician = forms.ChoiceField(required=False, label="Responsible clinician")
    discharged = forms.BooleanField(required=False, label="Include discharged patients")

    def __init__(self, *args: Any, clinicians: Sequence[Clinician], show_clinic: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["clinician"].choices = [
            ("", "Anyone"),
            (UNASSIGNED, "No responsible clinician"),
            *((str(c.pk), f"{c} ({c.clinic})" if show_clinic else str(c)) for c in clinicians),
        ]

    def filters(self, sort: Sort, descending: bool) -> CaseloadFilters:
        if not self.is_valid():
            return CaseloadFilters(sort=sort, descending=descending)
        data = self.cleaned_data
        chosen = data.get("clinician") or ""
        return CaseloadFilters(
            status=Status(data["status"]) if data.get("status") else None,
            phq9_band=data.get("band") or None,
            clinician_id=caseload.UNASSIGNED if chosen == UNASSIGNED else (int(chosen) if chosen else None),
            words=caseload.search_words(data.get("q") or ""),
            include_discharged=bool(data.get("discharged")),
            sort=sort,
            descending=descending,
        )


def parse_sort(value: str) -> tuple[Sort, bool]:
    """``phq9`` or ``-phq9`` (descending); anything else is the default order, by name."""
    descending = value.startswith("-")
    try:
        return Sort(value.removeprefix("-")), descending
    except ValueError:
        return Sort.NAME, False


def page_number(value: str) -> int:
    """The requested page; anything that is not a page number is the first page."""
    try:
        number = int(value)
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


@dataclass(frozen=True)
class Header:
    """A column header. A sortable one links to the other order and says the current one in
    ``aria_sort`` ("ascending", "descending", or "none" while another column sorts)."""

    label: str
    key: Sort | None = None
    url: str = ""
    aria_sort: str = ""
    hint: str = ""  # what the link does, for its title

    @property
    def arrow(self) -> str:
        return {"ascending": "▲", "descending": "▼"}.get(self.aria_sort, "")


def headers(query: QueryDict, current: Sort, descending: bool) -> list[Header]:
    """The table's headers in order. A click on the sorted column reverses it; on another, sorts it ascending."""
    days = clinical.get("ADHERENCE_WINDOW_DAYS")
    spec: list[tuple[str, Sort | None]] = [
        ("Patient", Sort.NAME),
        ("Treatment", None),
        ("Week", Sort.WEEK),
        ("PHQ-9", Sort.PHQ9),
        ("GAD-7", Sort.GAD7),
        ("Status", None),
        (f"Adherence ({days} days)", Sort.ADHERENCE),
        ("Next measurement", None),
        ("Next clinic session", None),
        ("Flags and course", None),
    ]
    found = []
    for label, key in spec:
        if key is None:
            found.append(Header(label))
            continue
        active = key == current
        reverse = active and not descending
        params = query.copy()
        params.pop("page", None)
        params["sort"] = f"-{key}" if reverse else str(key)
        found.append(
            Header(
                label=label,
                key=key,
                url=f"?{params.urlencode()}",
                aria_sort=("descending" if descending else "ascending") if active else "none",
                hint=f"Sort by {label}, {'descending' if reverse else 'ascending'}",
            )
        )
    return found


def sparkline(totals: Sequence[int], top: int) -> SafeString:
    """A tiny line of the last scores, drawn on the server; decorative (the text says the trend)."""
    if len(totals) < 2:
        return SafeString("")
    step = (SPARK_WIDTH - 4) / (len(totals) - 1)
    points = " ".join(
        f"{2 + i * step:.1f},{SPARK_HEIGHT - 2 - total / (top or 1) * (SPARK_HEIGHT - 4):.1f}"
        for i, total in enumerate(totals)
    )
    return format_html(
        '<svg class="spark" width="{}" height="{}" viewBox="0 0 {} {}" aria-hidden="true" focusable="false">'
        '<polyline points="{}" fill="none" stroke="currentColor" stroke-width="1.5"/></svg>',
        SPARK_WIDTH,
        SPARK_HEIGHT,
        SPARK_WIDTH,
        SPARK_HEIGHT,
        points,
    )


def local_time(value: Any, zone_name: str) -> str:
    """ "Tue 8 Dec 10:00 (Europe/London)": local wall-clock time with its zone named."""
    return f"{value:%a} {value.day} {value:%b %H:%M} ({zone_name})"


def local_day(value: Any) -> str:
    """ "Fri 4 Dec": a day in the patient's zone, which the row names once under the patient."""
    return f"{value:%a} {value.day} {value:%b}"


@dataclass(frozen=True)
class ScreenLine:
    """One questionnaire under the row's status: "ASEX 21", "positive screen", "Fri 4 Dec"."""

    code: str
    score: str
    finding: str
    positive: bool
    on: str = ""


def screen_lines(screens: caseload.Screens) -> list[ScreenLine]:
    """The latest ASEX and PCL-5 in a few words each (and "none yet" for a PTSD course without a
    PCL-5), shown under the row's status: no new column, so the table does not widen at 768 px.
    A positive screen says so in words, not colour only."""
    lines = []
    if asex := screens.asex:
        finding = "positive screen" if asex.positive else "negative screen"
        lines.append(ScreenLine("asex", f"ASEX {asex.total}", finding, asex.positive, local_day(asex.on)))
    cutoff = screens.pcl5_cutoff
    if pcl5 := screens.pcl5:
        finding = f"≥ {cutoff}: probable PTSD" if pcl5.positive else f"below the cut-off of {cutoff}"
        lines.append(ScreenLine("pcl5", f"PCL-5 {pcl5.total}", finding, pcl5.positive, local_day(pcl5.on)))
    elif screens.ptsd_course:
        lines.append(ScreenLine("pcl5", "PCL-5", f"none yet (cut-off {cutoff})", False))
    return lines


def _display(row: caseload.CaseloadRow) -> dict[str, Any]:
    """Strings the template shows for one row (formatting only; the selector decided)."""
    zone = row.patient.timezone
    lines = {}
    for line in (row.phq9, row.gad7):
        top = scales.get_scale(line.instrument).max_total
        lines[line.instrument] = {
            "line": line,
            "on": local_day(line.latest_on) if line.latest_on else "",
            "spark": sparkline(line.recent, top),
        }
    due = row.next_due
    return {
        "row": row,
        "scores": lines,
        "due": f"{due.what}: {'overdue since' if due.overdue else 'due'} {local_day(due.due_on)}" if due else "",
        "session": (
            f"{row.next_session.drug}, {local_time(row.next_session.due_at, zone)}" if row.next_session else ""
        ),
        "course_starts": (local_day(row.course.start_date) if row.course and row.course.start_date > row.today else ""),
        "top_severity": Severity(row.flags.top_severity).label if row.flags.top_severity else "",
        "screens": screen_lines(row.screens),
    }


def caseload_view(request: HttpRequest, patient_admin: PatientAdmin) -> HttpResponse:
    """The clinic's caseload; 403 without permission to view patients."""
    if not patient_admin.has_view_permission(request):
        raise PermissionDenied
    sort, descending = parse_sort(request.GET.get("sort", ""))
    clinicians = list(
        restrict_to_clinic(Clinician.objects.filter(is_active=True), request).select_related("user", "clinic")
    )
    form = CaseloadFilterForm(request.GET or None, clinicians=clinicians, show_clinic=request.user.is_superuser)
    filters = form.filters(sort, descending)
    now = timezone.now()
    rows = caseload.caseload(restrict_to_clinic(Patient.objects.all(), request), filters, now=now)
    page = caseload.caseload_page(rows, page_number(request.GET.get("page", "1")), caseload.PAGE_SIZE, now=now)
    query = request.GET.copy()
    query.pop("page", None)
    table_headers = headers(request.GET, sort, descending)
    membership = clinician_for(request)
    context = {
        **patient_admin.admin_site.each_context(request),
        "opts": patient_admin.opts,
        "title": "Caseload",
        "membership": membership,
        "filter_form": form,
        "filters": filters,
        "page_obj": page,
        "rows": [_display(row) for row in page.rows],
        "headers": table_headers,
        "sorted_by": next(h for h in table_headers if h.key == sort),
        "sort": f"-{sort}" if descending else str(sort),
        "query_string": query.urlencode(),
    }
    return TemplateResponse(request, CASELOAD_TEMPLATE, context)
