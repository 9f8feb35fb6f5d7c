"""'Issue a password reset link' on the patient page: patients' portal users have no email.

GET explains what the link does and asks to confirm; POST issues it
(``tracker.services.password_reset``) and shows the whole link once, never stored, so the
clinician can give it to the patient. Clinic-scoped like every patient view (404 outside).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tracker.services.password_reset import issue_password_reset_link, reset_link_refusal

if TYPE_CHECKING:
    from tracker.admin.patients import PatientAdmin

RESET_LINK_TEMPLATE = "admin/tracker/patient/password_reset_link.html"
NOT_ALLOWED = "Only staff who may change a patient's record (clinic managers) can issue a password reset link."


def reset_link_view(request: HttpRequest, object_id: int, patient_admin: PatientAdmin) -> HttpResponse:
    patient = patient_admin.get_object(request, str(object_id))  # 404 outside the user's clinic
    if not patient_admin.has_change_permission(request, patient):
        raise PermissionDenied(NOT_ALLOWED)
    refusal = reset_link_refusal(patient)
    link = None
    if request.method == "POST" and refusal is None:
        link = request.build_absolute_uri(issue_password_reset_link(patient=patient, by=request.user))
    context = {
        **patient_admin.admin_site.each_context(request),
        "opts": patient_admin.opts,
        "original": patient,
        "title": f"Password reset link for {patient.full_name}",
        "refusal": refusal,
        "link": link,
        "valid_hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
    }
    response = TemplateResponse(
        request, RESET_LINK_TEMPLATE, context, status=400 if refusal and request.method == "POST" else 200
    )
    response["Cache-Control"] = "no-store"  # the link is a credential until it is used
    return response
