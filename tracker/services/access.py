"""Writing the access log: one INSERT per read of a patient's record, or per page of a list.

Called by each view that shows one patient's record (the admin's patient page, timeline and
course CSV; the API's patient detail and FHIR export), and by the API's patient list for the
patients on the page it returns (their records, as data, leave the building). It takes ids the
view already holds, so recording costs one INSERT and no query before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracker.models import Patient, PatientAccess


def client_address(request: Any) -> str | None:
    """The address the request came from, as the web server saw it (REMOTE_ADDR).

    Behind a proxy this is the proxy's address unless the proxy is configured to pass the
    client's; the log still names the user, which is what governance relies on.
    """
    return request.META.get("REMOTE_ADDR") or None


def _row(request: Any, patient: Patient, surface: PatientAccess.Surface, address: str | None) -> PatientAccess:
    return PatientAccess(
        user_id=request.user.pk, patient_id=patient.pk, clinic_id=patient.clinic_id, surface=surface, address=address
    )


def record_access(request: Any, patient: Patient, surface: PatientAccess.Surface) -> PatientAccess:
    """Log that ``request.user`` opened ``patient``'s record on ``surface`` (Django or DRF request)."""
    row = _row(request, patient, surface, client_address(request))
    row.save()
    return row


def record_list_access(request: Any, patients: Iterable[Patient], surface: PatientAccess.Surface) -> int:
    """Log one row per patient a list showed to ``request.user``, in one INSERT (none for an empty page).

    A page is bounded by the list's pagination (at most 100 rows), so one statement holds it.
    Returns how many rows were written.
    """
    address = client_address(request)
    rows = [_row(request, patient, surface, address) for patient in patients]
    if rows:
        PatientAccess.objects.bulk_create(rows)
    return len(rows)
