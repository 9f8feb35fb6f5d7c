"""The access log in the clinicians' workspace: for clinic managers, read-only, clinic-scoped.

Managers (and superusers) see who opened which record: per patient on the patient page ("Who
opened this record", the last ``RECENT_ACCESSES``), and clinic-wide on the "Record accesses"
list, filterable by clinician (which records they opened), where, and date, and exportable as
CSV. Nobody can add, change or delete a row here; the model refuses it too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tracker.admin.exports import csv_response
from tracker.admin.scoping import ScopedAdmin, clinician_for
from tracker.models import Clinician, PatientAccess

RECENT_ACCESSES = 50
ACCESS_CSV_HEADER = ["opened_at_utc", "username", "record_number", "patient_id", "where", "address"]


def is_manager(request: HttpRequest) -> bool:
    """Superusers and active clinic managers read the access log; other staff do not."""
    if request.user.is_superuser:
        return True
    membership = clinician_for(request)
    return membership is not None and membership.role == Clinician.Role.MANAGER


class RecentAccessFormSet(BaseInlineFormSet):
    """Only the newest rows: a record opened every day has thousands."""

    def get_queryset(self) -> QuerySet:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset()[:RECENT_ACCESSES]
        return self._recent


@admin.register(PatientAccess)
class PatientAccessAdmin(ScopedAdmin):
    """The clinic's access log; 'which records did this clinician open' is the 'opened by' filter."""

    clinic_lookup = "clinic"
    list_display = ["at", "user", "patient", "surface", "address"]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "surface", "at"]
    list_select_related = ["user", "patient"]
    search_fields = ["^patient__record_number", "patient__family_name", "user__username"]
    search_help_text = "Search by record number, patient's family name or the clinician's username."
    date_hierarchy = "at"
    actions = ["export_csv"]
    readonly_fields = ["at", "user", "patient", "clinic", "surface", "address"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_manager(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_manager(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Export selected accesses (CSV)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[PatientAccess]) -> HttpResponse:
        rows = (
            [a.at.astimezone(dt.UTC).isoformat(timespec="seconds"), a.user.get_username(),
             a.patient.record_number, a.patient_id, a.get_surface_display(), a.address or ""]
            for a in queryset.select_related("user", "patient").order_by("-at", "-id")
        )  # fmt: skip
        return csv_response(f"record-accesses-{timezone.localdate():%Y%m%d}.csv", ACCESS_CSV_HEADER, rows)
