"""Writing the access log: one INSERT per read of a patient's record.

Called by each view that shows one patient's record (the admin's patient page, timeline and
course CSV; the API's patient detail and FHIR export). It takes ids the view already holds,
so recording a read costs one INSERT and no query before it.
"""

from __future__ import annotations

from typing import Any

from tracker.models import Patient, PatientAccess


def client_address(request: Any) -> str | None:
    """The address the request came from, as the web server saw it (REMOTE_ADDR).

    Behind a proxy this is the proxy's address unless the proxy is configured to pass the
    client's; the log still names the user, which is what governance relies on.
    """
    return request.META.get("REMOTE_ADDR") or None


def record_access(request: Any, patient: Patient, surface: PatientAccess.Surface) -> PatientAccess:
    """Log that ``request.user`` opened ``patient``'s record on ``surface`` (Django or DRF request)."""
    return PatientAccess.objects.create(
        user_id=request.user.pk,
        patient_id=patient.pk,
        clinic_id=patient.clinic_id,
        surface=surface,
        address=client_address(request),
    )
