"""The flag worklist: the admin's landing page, and its one-click, patient and bulk actions.

The admin index keeps Django's app list but shows the clinic's open work above it: by
default one row per patient, ranked (``tracker.selectors.triage``); ``?view=flags`` lists
the flags one by one, as before.
Acknowledging and resolving are POSTs (CSRF-protected by ``admin_view``) to URLs of the
FlagAdmin, which looks each flag up through its clinic-scoped queryset: a flag of another
clinic answers 404. The views only translate the request; the services decide.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tracker import worklist
from tracker.admin.scoping import clinician_for, restrict_to_clinic
from tracker.models import Clinician, Flag, FlagKind, Patient, Severity
from tracker.selectors import triage
from tracker.services.errors import ServiceError
from tracker.services.flags import acknowledge_flag, resolve_flag
from tracker.services.worklist import (
    BulkOutcome,
    acknowledge_flags,
    acknowledge_patient_flags,
    resolve_flags,
    resolve_patient_flags,
    service_message,
)

if TYPE_CHECKING:
    from tracker.admin.flags import FlagAdmin

WORKLIST_TEMPLATE = "admin/tracker/worklist.html"
PAGE_SIZE = 100
TRIAGE_PAGE_SIZE = 50  # patients a page: each row carries all of the patient's open flags
MAX_PAGE = 10_000
UNASSIGNED = "none"
VIEW_PATIENTS, VIEW_FLAGS = "patients", "flags"


# A ticked flag's id: ASCII digits that fit a bigint ("²".isdigit() is true, and a
# 30-digit number overflows the column; either would be a 500, not "not found").
FLAG_ID = re.compile(r"[0-9]{1,18}")


class WorklistFilterForm(forms.Form):
    """GET filters. Patients and clinicians are looked up in the user's clinic only.

    ``q`` searches patients by record number or name (see ``worklist.worklist``) instead of
    listing every flagged patient, which at a large clinic was most of the page's time and size.
    ``patient`` is one exact patient by id, for links such as "this patient's flags"; an id
    outside ``patients`` (another clinic's patient, or none) is a form error, never a filter.
    """

    q = forms.CharField(
        required=False,
        max_length=100,
        label="Patient",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Record number or name", "size": 24}),
    )
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.none(),
        required=False,
        widget=forms.HiddenInput,
        error_messages={
            "invalid_choice": (
                "Patient: no patient of your clinic has the id %(value)s. Search by record number or name instead."
            )
        },
    )
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *FlagKind.choices])
    severity = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "All severities"), *sorted(Severity.choices, reverse=True)],
    )
    assigned = forms.ChoiceField(required=False, label="Assigned to")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Open and acknowledged"), *((s.value, s.label) for s in map(Flag.Status, worklist.UNRESOLVED))],
    )
    good_news = forms.BooleanField(
        required=False,
        label="Include response and remission",
        help_text="Good news is on the timeline and the caseload; tick to list it here too.",
    )
    view = forms.ChoiceField(
        required=False,
        choices=[(VIEW_PATIENTS, "By patient"), (VIEW_FLAGS, "Every flag")],
        widget=forms.HiddenInput,
    )

    def __init__(self, *args: Any, patients: QuerySet[Patient], clinicians: list[Clinician], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = patients
        self.fields["assigned"].choices = [
            ("", "Anyone or no one"),
            (UNASSIGNED, "Not assigned"),
            *((str(c.pk), str(c)) for c in clinicians),
        ]

    def filters(self) -> worklist.WorklistFilters:
        if not self.is_valid():
            return worklist.WorklistFilters()
        data = self.cleaned_data
        assigned = data.get("assigned") or ""
        patient = data.get("patient")
        return worklist.WorklistFilters(
            kind=data.get("kind") or None,
            severity=data.get("severity"),
            patient_id=patient.pk if patient else None,
            patient_words=worklist.search_words(data.get("q") or ""),
            assigned_to_id=int(assigned) if assigned.isdigit() else None,
            unassigned=assigned == UNASSIGNED,
            status=data.get("status") or None,
        )

    def by_patient(self) -> bool:
        """The triage view (the default) rather than every flag one by one; kept when another filter is invalid."""
        return self._valid_value("view") != VIEW_FLAGS

    def wants_good_news(self) -> bool:
        return bool(self._valid_value("good_news"))

    def _valid_value(self, name: str) -> Any:
        """One field's cleaned value, even when another field is in error (None if unbound or invalid)."""
        if not self.is_bound:
            return None
        self.is_valid()
        return self.cleaned_data.get(name)

    def chosen_patient(self) -> Patient | None:
        """The exact patient filtered on, once the form is valid (for "only flags of ...")."""
        return self.cleaned_data.get("patient") if self.is_valid() else None


def worklist_context(request: HttpRequest, flag_admin: FlagAdmin) -> dict[str, Any]:
    """Everything the worklist template shows; a fixed number of queries (see tests)."""
    if not flag_admin.has_view_permission(request):
        return {"worklist_visible": False}
    flags = flag_admin.get_queryset(request)
    clinicians = list(
        restrict_to_clinic(Clinician.objects.filter(is_active=True), request).select_related("user", "clinic")
    )
    patients = restrict_to_clinic(Patient.objects.all(), request)
    form = WorklistFilterForm(request.GET or None, patients=patients, clinicians=clinicians)
    matching = worklist.worklist(flags, form.filters())
    by_patient = form.by_patient()
    if by_patient:
        page: worklist.WorklistPage | triage.TriagePage = triage.triage_page(
            matching, patients, _page_number(request), TRIAGE_PAGE_SIZE, good_news=form.wants_good_news()
        )
    else:
        page = worklist.worklist_page(
            matching if form.wants_good_news() else triage.work(matching), _page_number(request), PAGE_SIZE
        )
    counts = worklist.severity_counts(triage.work(flags))
    return {
        "worklist_visible": True,
        "by_patient": by_patient,
        "severity_counts": [(Severity(level).label, level, n) for level, n in counts.items()],
        "unresolved_total": sum(counts.values()),
        "patients_total": triage.patients_with_work(flags),
        "good_news_total": triage.good_news_count(flags),
        "filter_form": form,
        "chosen_patient": form.chosen_patient(),
        "page_obj": page,
        "rows": page.rows if by_patient else [],
        "flags": [] if by_patient else page.flags,
        "can_act": flag_admin.has_change_permission(request),
        "note_required_from": Severity.URGENT,
        "membership": clinician_for(request),
        "query_string": _query_without(request, "page"),
        "all_patients_query": _query_without(request, "page", "patient"),
        "flags_view_query": _query_with(request, view=VIEW_FLAGS),
        "patients_view_query": _query_with(request, view=VIEW_PATIENTS),
    }


def _page_number(request: HttpRequest) -> int:
    """The requested page; anything that is not a page number is the first page."""
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        number = 1
    # The cap (a million flags) keeps the OFFSET a sane integer: a 30-digit page would be a database error.
    return min(max(number, 1), MAX_PAGE)


def _query_without(request: HttpRequest, *names: str) -> str:
    """The current query string without ``names``, for links that change only those."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


def _query_with(request: HttpRequest, **values: str) -> str:
    """The current query string with ``values`` set and the page reset, for the view switch."""
    query = request.GET.copy()
    query.pop("page", None)
    for name, value in values.items():
        query[name] = value
    return query.urlencode()


def install_worklist(site: admin.AdminSite, flag_admin: FlagAdmin) -> None:
    """Make ``site``'s index the worklist; Django's app list stays below it."""
    original_index = site.index

    def index(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = {**worklist_context(request, flag_admin), "title": "Flag worklist", **(extra_context or {})}
        return original_index(request, extra_context=context)

    site.index = index  # type: ignore[method-assign]
    site.index_template = WORKLIST_TEMPLATE


def _back(request: HttpRequest) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = reverse("admin:index")
    return HttpResponseRedirect(target or reverse("admin:index"))


def _flag_for_action(request: HttpRequest, flag_admin: FlagAdmin, object_id: int) -> Flag:
    # Looked up through the clinic-scoped queryset: another clinic's flag is a 404.
    flag = get_object_or_404(flag_admin.get_queryset(request).select_related("patient"), pk=object_id)
    if not flag_admin.has_change_permission(request, flag):
        raise PermissionDenied
    return flag


@require_POST
def acknowledge_view(request: HttpRequest, object_id: int, flag_admin: FlagAdmin) -> HttpResponse:
    flag = _flag_for_action(request, flag_admin, object_id)
    try:
        acknowledge_flag(flag=flag, by=request.user)
    except ServiceError as error:
        messages.error(request, service_message(error))
    else:
        messages.success(request, f"Acknowledged: {flag.get_kind_display()} for {flag.patient}.")
    return _back(request)


@require_POST
def resolve_view(request: HttpRequest, object_id: int, flag_admin: FlagAdmin) -> HttpResponse:
    flag = _flag_for_action(request, flag_admin, object_id)
    try:
        resolve_flag(flag=flag, by=request.user, note=request.POST.get("note", ""))
    except ServiceError as error:
        messages.error(request, f"{flag.get_kind_display()} for {flag.patient} is still open: {service_message(error)}")
    else:
        messages.success(request, f"Resolved: {flag.get_kind_display()} for {flag.patient}.")
    return _back(request)


def _report(request: HttpRequest, verb: str, outcome: BulkOutcome) -> None:
    if outcome.done:
        messages.success(request, f"{verb} {outcome.done} flag{'s' if outcome.done != 1 else ''}.")
    for flag, reason in outcome.refused:
        messages.error(request, f"{flag.get_kind_display()} for {flag.patient}: {reason}")


@require_POST
def bulk_view(request: HttpRequest, flag_admin: FlagAdmin) -> HttpResponse:
    """Acknowledge or resolve the ticked flags; ids outside the clinic are simply not found."""
    if not flag_admin.has_change_permission(request):
        raise PermissionDenied
    ids = [int(value) for value in request.POST.getlist("flag") if FLAG_ID.fullmatch(value)]
    action = request.POST.get("action")
    selected = list(flag_admin.get_queryset(request).filter(pk__in=ids).select_related("patient").order_by("pk"))
    if not selected:
        messages.warning(request, "Tick at least one flag first.")
    elif action == "acknowledge":
        _report(request, "Acknowledged", acknowledge_flags(flags=selected, by=request.user))
    elif action == "resolve":
        note = request.POST.get("note", "")
        _report(request, "Resolved", resolve_flags(flags=selected, by=request.user, note=note))
    else:
        messages.error(request, "Choose acknowledge or resolve.")
    return _back(request)


PATIENT_ACTIONS = {"acknowledge", "resolve"}


@require_POST
def patient_view(request: HttpRequest, patient_id: int, flag_admin: FlagAdmin) -> HttpResponse:
    """Acknowledge or resolve a patient's row: the flags it showed, in one step, the note on each."""
    if not flag_admin.has_change_permission(request):
        raise PermissionDenied
    # Through the clinic-scoped queryset: another clinic's patient simply has no flags here.
    ids = [int(value) for value in request.POST.getlist("flag") if FLAG_ID.fullmatch(value)]
    selected = list(
        triage.flags_of_rows(flag_admin.get_queryset(request), patient_id, ids).select_related("patient").order_by("pk")
    )
    action = request.POST.get("action")
    if action not in PATIENT_ACTIONS:
        messages.error(request, "Choose acknowledge or resolve.")
        return _back(request)
    if not selected:
        messages.warning(request, "This patient's flags were resolved meanwhile: there is nothing left to act on.")
        return _back(request)
    patient = selected[0].patient
    try:
        if action == "acknowledge":
            done = acknowledge_patient_flags(flags=selected, by=request.user)
            verb = "Acknowledged"
        else:
            done = resolve_patient_flags(flags=selected, by=request.user, note=request.POST.get("note", ""))
            verb = "Resolved"
    except ServiceError as error:
        messages.error(request, f"{patient}: nothing was changed. {service_message(error)}")
    else:
        messages.success(request, f"{verb} {done} flag{'s' if done != 1 else ''} for {patient}.")
    return _back(request)
