"""What patients and clinicians report: dose events, questionnaires, side effects.

Read-mostly: these rows are written by the portal, the API and the services that raise
flags with them; the admin shows them and can mark them entered in error.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tracker.admin.scoping import EnteredInErrorFilter, ScopedHistoryAdmin
from tracker.models import Assessment, DoseEvent, SideEffectReport


class ReadMostlyAdmin(ScopedHistoryAdmin):
    """Every field read-only and no add form: writes go through the services."""

    clinic_lookup = "patient__clinic"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.opts.fields if f.name != "id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(DoseEvent)
class DoseEventAdmin(ReadMostlyAdmin):
    list_display = ["occurred_at", "patient", "prescription", "outcome", "timing", "location", "reporter"]
    list_filter = ["outcome", "timing", "location", "reporter", "outside_clinic_report", EnteredInErrorFilter]
    list_select_related = ["patient", "prescription__drug"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number"]
    date_hierarchy = "occurred_at"


@admin.register(Assessment)
class AssessmentAdmin(ReadMostlyAdmin):
    list_display = ["completed_at", "patient", "instrument", "total", "band", "source"]
    list_filter = ["instrument", "source", EnteredInErrorFilter]
    list_select_related = ["patient"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number"]
    date_hierarchy = "completed_at"


@admin.register(SideEffectReport)
class SideEffectReportAdmin(ReadMostlyAdmin):
    list_display = ["reported_at", "patient", "effect", "severity", "onset_date", "prescription"]
    list_filter = ["severity", "effect", EnteredInErrorFilter]
    list_select_related = ["patient", "prescription__drug"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number", "effect"]
    date_hierarchy = "reported_at"
