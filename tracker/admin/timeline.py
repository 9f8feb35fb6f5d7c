"""The patient's course timeline page, linked from the patient page (``…/patient/<id>/timeline/``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from tracker.admin.prescribing import can_prescribe
from tracker.charts import CHART_STYLE
from tracker.models import PatientAccess
from tracker.services.access import record_access
from tracker.timeline import course_charts, patient_timeline

if TYPE_CHECKING:
    from tracker.admin.patients import PatientAdmin

TIMELINE_TEMPLATE = "admin/tracker/patient/timeline.html"


def timeline_view(request: HttpRequest, object_id: int, patient_admin: PatientAdmin) -> HttpResponse:
    """The whole course in date order with its charts; 404 for a patient of another clinic."""
    patient = patient_admin.get_object(request, str(object_id))  # 404 outside the user's clinic
    if not patient_admin.has_view_permission(request, patient):
        raise PermissionDenied
    record_access(request, patient, PatientAccess.Surface.TIMELINE)
    timeline = patient_timeline(patient, now=timezone.now())
    context = {
        **patient_admin.admin_site.each_context(request),
        "can_prescribe": patient.is_active and can_prescribe(request),
        "opts": patient_admin.opts,
        "original": patient,
        "title": f"Course of {patient.full_name}",
        "timeline": timeline,
        "charts": course_charts(timeline),
        "chart_style": CHART_STYLE,
    }
    return TemplateResponse(request, TIMELINE_TEMPLATE, context)
