"""Starting an in-clinic session the way a nurse does: from the planned session, with the patient shown.

Choice labels name the patient and the local wall-clock time (two patients on esketamine 84 mg
are told apart), the add page is pre-filled from ``?planned_dose=<id>``, and "Today's
sessions" lists the clinic's planned sessions of the day with a "Start session" link each.
Times are local to each patient, with the zone named.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from tracker import session_floor
from tracker.admin.scoping import restrict_to_clinic
from tracker.models import InClinicSession, PlannedDose, Prescription

if TYPE_CHECKING:
    from tracker.admin.sessions import InClinicSessionAdmin

ISO_MINUTES = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> reads and writes


def local_text(instant: dt.datetime, zone: Any) -> str:
    """ "Tue 8 Dec 2026, 10:00 GMT (Europe/London)": the wall clock, with the zone named."""
    local = instant.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()} ({zone.key})"


class PrescriptionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Prescription) -> str:
        return f"{obj.patient} — {obj.drug} {obj.dose_text}"


class PlannedSessionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: PlannedDose) -> str:
        return f"{obj.patient} — {obj.prescription.drug}, {local_text(obj.due_at, obj.patient.zone)}"


class LocalDateTimeInput(forms.DateTimeInput):
    """One labelled input for date and time (the admin's split pair has no labels: axe critical).

    The value is shown and read in the active time zone, which the page names beside it.
    """

    input_type = "datetime-local"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs=attrs, format=ISO_MINUTES)


def local_datetime_field(field: forms.Field) -> forms.Field:
    """The admin's datetime form field, as one labelled local input that says its zone."""
    if isinstance(field, (forms.SplitDateTimeField, forms.DateTimeField)):
        zone = timezone.get_current_timezone_name()
        replacement = forms.DateTimeField(
            required=field.required,
            label=field.label,
            widget=LocalDateTimeInput(),
            input_formats=[ISO_MINUTES, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
            help_text=" ".join(filter(None, [str(field.help_text or ""), f"Time in {zone}."])),
        )
        return replacement
    return field


def planned_sessions_today(request: HttpRequest, now: dt.datetime) -> list[dict[str, Any]]:
    """The clinic's clinic-only planned sessions due on each patient's local today, with their state."""
    window = restrict_to_clinic(
        PlannedDose.objects.filter(
            prescription__drug__in_clinic_only=True,
            due_at__gte=now - dt.timedelta(hours=14),
            due_at__lte=now + dt.timedelta(hours=38),
        )
        .exclude(status=PlannedDose.Status.CANCELLED)
        .select_related("patient", "prescription__drug")
        .order_by("due_at"),
        request,
    )
    doses = [d for d in window if d.local_date == now.astimezone(d.patient.zone).date()]
    started = dict(
        InClinicSession.objects.current()
        .filter(planned_dose__in=[d.pk for d in doses])
        .values_list("planned_dose_id", "pk")
    )
    add_url = reverse("admin:tracker_inclinicsession_add")
    rows = []
    for dose in doses:
        session_id = started.get(dose.pk)
        rows.append(
            {
                "dose": dose,
                "when": local_text(dose.due_at, dose.patient.zone),
                "session_url": reverse("admin:tracker_inclinicsession_change", args=[session_id]) if session_id else "",
                "start_url": "" if session_id else f"{add_url}?planned_dose={dose.pk}",
            }
        )
    return rows


def today_view(request: HttpRequest, session_admin: InClinicSessionAdmin) -> HttpResponse:
    """Today's planned in-clinic sessions, each with "Start session" or a link to the one started."""
    if not session_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    context = {
        **session_admin.admin_site.each_context(request),
        "opts": session_admin.opts,
        "title": "Today's in-clinic sessions",
        "rows": planned_sessions_today(request, now),
        "can_start": session_admin.has_add_permission(request),
    }
    return TemplateResponse(request, "admin/tracker/inclinicsession/today.html", context)


def floor_view(request: HttpRequest, session_admin: InClinicSessionAdmin) -> HttpResponse:
    """Sessions in progress and what each needs next; the table refreshes itself every 30 s.

    ``?fragment=1`` returns the table's body alone, which the page's script swaps in, so a
    nurse with several patients in chairs sees who needs them without reloading.
    """
    if not session_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    zone = timezone.get_current_timezone()
    sessions = (
        session_admin.get_queryset(request)
        .filter(status=InClinicSession.Status.STARTED, entered_in_error_at__isnull=True)
        .filter(created_at__gte=now - dt.timedelta(hours=24))
        .select_related("patient", "prescription__drug")
        .order_by("first_device_at", "created_at")
    )
    rows = []
    for session in sessions:
        step = session_floor.next_step(session, now, zone)
        rows.append(
            {
                "session": session,
                "since": session_floor.minutes_since_first_device(session, now),
                "next": step,
                "url": reverse("admin:tracker_inclinicsession_change", args=[session.pk]),
            }
        )
    rows.sort(key=lambda r: (not r["next"].overdue, r["next"].due_at or now))
    context = {
        **session_admin.admin_site.each_context(request),
        "opts": session_admin.opts,
        "title": "Session floor",
        "rows": rows,
        "zone_name": timezone.get_current_timezone_name(),
        "updated": now.astimezone(zone),
    }
    template = (
        "admin/tracker/inclinicsession/floor_rows.html"
        if request.GET.get("fragment")
        else ("admin/tracker/inclinicsession/floor.html")
    )
    return TemplateResponse(request, template, context)
