"""Clinic isolation and the no-hard-delete rule, shared by every tracker ModelAdmin.

A staff user sees only rows of the clinic they are an active Clinician of; superusers see
everything; any other staff user sees nothing. Rows outside the user's clinic answer 404
by every object URL, the same as rows that do not exist, so ids reveal nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from tracker.models import (
    Assessment,
    Clinic,
    ClinicalRecord,
    Clinician,
    DoseEvent,
    DoseSchedule,
    Flag,
    Patient,
    PlannedDose,
    Prescription,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.services.records import mark_entered_in_error

# How to reach the clinic from each model, for foreign-key choices on any admin form.
CLINIC_PATHS: dict[type[models.Model], str] = {
    Clinic: "pk",
    Clinician: "clinic",
    Patient: "clinic",
    Prescription: "patient__clinic",
    DoseSchedule: "prescription__patient__clinic",
    PlannedDose: "patient__clinic",
    DoseEvent: "patient__clinic",
    Assessment: "patient__clinic",
    SideEffectReport: "patient__clinic",
    WeightMeasurement: "patient__clinic",
    Flag: "patient__clinic",
}


def clinician_for(request: HttpRequest) -> Clinician | None:
    """The user's active clinic membership, looked up once per request."""
    if not hasattr(request, "_tracker_clinician"):
        user = request.user
        membership = None
        if user.is_authenticated:
            membership = Clinician.objects.select_related("clinic").filter(user=user, is_active=True).first()
        request._tracker_clinician = membership  # type: ignore[attr-defined]
    return request._tracker_clinician  # type: ignore[attr-defined]


def restrict_to_clinic(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    """Limit ``queryset`` to the user's clinic if its model belongs to a clinic."""
    if request.user.is_superuser:
        return queryset
    path = CLINIC_PATHS.get(queryset.model)
    if path is None:
        return queryset
    membership = clinician_for(request)
    if membership is None:
        return queryset.none()
    return queryset.filter(**{path: membership.clinic_id})


class EnteredInErrorFilter(admin.SimpleListFilter):
    title = "entered in error"
    parameter_name = "in_error"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "Current records"), ("yes", "Entered in error")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(entered_in_error_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(entered_in_error_at__isnull=False)
        return queryset


class ClinicianListFilter(admin.RelatedOnlyFieldListFilter):
    """Clinicians who appear in the (scoped) list, labelled without a user query per clinician."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[Any, str]]:
        shown = model_admin.get_queryset(request).distinct().values_list(f"{self.field_path}__pk", flat=True)
        clinicians = Clinician.objects.filter(pk__in=shown).select_related("user")
        return [(c.pk, str(c)) for c in clinicians]


class EnteredInErrorForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Why these records are wrong. Kept with each record and in its history.",
    )


class ClinicScopedMixin:
    """Row-level clinic isolation for a ModelAdmin; put it before the ModelAdmin base.

    ``clinic_lookup`` is the queryset path from the model to its clinic's id (``"clinic"``,
    ``"patient__clinic"``), or None for shared rows such as the drug catalogue, which every
    clinician may see.
    """

    clinic_lookup: str | None = "clinic"
    entered_in_error_template = "admin/tracker/entered_in_error.html"

    # --- Who sees which rows ---------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return qs
        membership = clinician_for(request)
        if membership is None:
            return qs.none()
        if self.clinic_lookup is None:
            return qs
        return qs.filter(**{self.clinic_lookup: membership.clinic_id})

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> models.Model:
        # Django redirects to the index ("doesn't exist") when get_queryset hides the
        # object; a 404 is clearer and the same for "another clinic's" and "no such row".
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is None:
            raise Http404("No such record in your clinic.")
        return obj

    def _is_member(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or clinician_for(request) is not None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_member(request) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_member(request) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._is_member(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_member(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing in the tracker is hard-deleted; clinical rows are marked entered in error.
        return False

    # --- Form choices --------------------------------------------------------------------

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        related = db_field.related_model
        if "queryset" not in kwargs and related in CLINIC_PATHS:
            kwargs["queryset"] = restrict_to_clinic(related._default_manager.all(), request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    # --- Actions -------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        if issubclass(self.model, ClinicalRecord) and self.has_change_permission(request):  # type: ignore[attr-defined]
            name = "mark_entered_in_error"
            actions[name] = (ClinicScopedMixin.mark_entered_in_error, name, "Mark as entered in error…")
        return actions

    def mark_entered_in_error(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Ask for a reason, then mark each selected record; nothing is deleted."""
        form = EnteredInErrorForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            done, skipped = 0, 0
            # queryset is the changelist's, so already limited to the user's clinic. Re-read
            # by pk (it may be annotated, and FOR UPDATE refuses GROUP BY), locked in pk order.
            pks = list(queryset.values_list("pk", flat=True))
            model = self.model  # type: ignore[attr-defined]
            with transaction.atomic():
                for record in model._default_manager.filter(pk__in=pks).order_by("pk").select_for_update():
                    if record.entered_in_error_at is not None:
                        skipped += 1
                        continue
                    mark_entered_in_error(record=record, by=request.user, reason=reason)
                    done += 1
            opts = self.model._meta  # type: ignore[attr-defined]
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"Marked {done} {opts.verbose_name_plural if done != 1 else opts.verbose_name} as entered in error.",
                messages.SUCCESS,
            )
            if skipped:
                self.message_user(  # type: ignore[attr-defined]
                    request, f"{skipped} already marked as entered in error; left as they were.", messages.WARNING
                )
            return None  # back to the changelist
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": "Mark as entered in error",
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "records": list(queryset),
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "mark_entered_in_error",
        }
        return TemplateResponse(request, self.entered_in_error_template, context)


class ScopedAdmin(ClinicScopedMixin, admin.ModelAdmin):
    """Base for tracker models without a history table."""


class ScopedHistoryAdmin(ClinicScopedMixin, SimpleHistoryAdmin):
    """Base for models with ``HistoricalRecords``: clinicians see who changed what.

    simple_history's views need the scoping added by hand: its history list falls back to
    the history rows when get_queryset hides the object, and its per-version view does not
    consult get_queryset at all. Reverting through history is refused: it would bypass the
    services (a dose would change without a new prescription version).
    """

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        self.get_object(request, unquote(object_id))  # 404 outside the user's clinic
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        self.get_object(request, unquote(object_id))  # 404 outside the user's clinic
        if request.method != "GET":
            raise PermissionDenied("Clinical history is read-only.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


def apply_validation_error(form: forms.Form, error: ValidationError, field_map: dict[str, str] | None = None) -> None:
    """Show a model/service ValidationError on ``form``, each message beside its field.

    ``field_map`` renames model fields to form fields (``dose`` -> ``new_dose``); messages
    for fields the form does not have go to the top of the form, in the model's own words.
    """
    field_map = field_map or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        target = field_map.get(field, field)
        form.add_error(target if target in form.fields else None, errors)
