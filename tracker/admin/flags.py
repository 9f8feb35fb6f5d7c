"""The flag worklist. Flags are raised by the rules; here clinicians read and assign them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern

from tracker.admin import worklist
from tracker.admin.patients import ReadOnlyInline
from tracker.admin.routes import bound_routes
from tracker.admin.scoping import ClinicianListFilter, ScopedHistoryAdmin
from tracker.models import Flag, FlagFact


class FlagFactInline(ReadOnlyInline):
    """What happened behind the problem: each missed dose or worse score, and what answered it."""

    model = FlagFact
    verbose_name = "fact behind this flag"
    verbose_name_plural = "Facts behind this flag (each missed dose, score or session)"
    fields = ["message", "occurred_at", "answered_at", "answer_note"]
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Facts are part of the flag: whoever may read the flag reads what is behind it.
        return request.user.has_perm("tracker.view_flag")


class UnresolvedFilter(admin.SimpleListFilter):
    """Defaults to what still needs work: open and acknowledged flags."""

    title = "worklist"
    parameter_name = "worklist"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("unresolved", "Unresolved"), ("resolved", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        if self.value() == "unresolved":
            return queryset.exclude(status=Flag.Status.RESOLVED)
        if self.value() == "resolved":
            return queryset.filter(status=Flag.Status.RESOLVED)
        return queryset


@admin.register(Flag)
class FlagAdmin(ScopedHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ["severity", "kind", "patient", "status", "raised_at", "occurrences", "assigned_to", "message"]
    list_filter = [
        UnresolvedFilter,
        "status",
        "severity",
        "kind",
        ("assigned_to", ClinicianListFilter),
    ]
    list_select_related = ["patient", "assigned_to__user"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number"]
    date_hierarchy = "raised_at"
    # Status changes need who/when/note: that belongs to the flag services, not a bare form.
    editable_fields = ("assigned_to",)
    # What a clinician reads; the tracker's own bookkeeping (the deduplication key, subject
    # ids, the email outbox mark, the ranking number) stays off the page.
    fieldsets = [
        (None, {"fields": ["patient", "kind", "severity", "status", "title", "message", "action", "subject_link"]}),
        ("How it grew", {"fields": ["raised_at", "last_occurred_at", "occurrences", "streak", "escalated_at"]}),
        (
            "Work on it",
            {
                "fields": [
                    "assigned_to",
                    "acknowledged_at",
                    "acknowledged_by",
                    "resolved_at",
                    "resolved_by",
                    "resolution_note",
                ]
            },
        ),
    ]
    inlines = [FlagFactInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.opts.fields if f.name not in ("id", *self.editable_fields)] + ["subject_link"]

    @admin.display(description="About")
    def subject_link(self, obj: Flag) -> str:
        """The record the flag is about, in words (a missed dose, a questionnaire), not its table and id."""
        return str(obj.subject) if obj.subject_type_id and obj.subject is not None else "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return super().get_queryset(request).select_related("subject_type")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        """The worklist's POST actions; each view re-checks the clinic through get_queryset."""
        custom = bound_routes(
            self,
            "flag_admin",
            [
                ("<int:object_id>/acknowledge/", worklist.acknowledge_view, "tracker_flag_acknowledge"),
                ("<int:object_id>/resolve/", worklist.resolve_view, "tracker_flag_resolve"),
                ("worklist/bulk/", worklist.bulk_view, "tracker_flag_bulk"),
                ("worklist/patient/<int:patient_id>/", worklist.patient_view, "tracker_flag_patient"),
            ],
        )
        return custom + super().get_urls()


# The admin's landing page is this clinic's worklist.
worklist.install_worklist(admin.site, admin.site.get_model_admin(Flag))
