"""The shared drug catalogue, clinics, and clinic staff."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from tracker.admin.scoping import ScopedAdmin, ScopedHistoryAdmin, apply_validation_error, clinician_for
from tracker.models import Clinic, Clinician, CrisisContact, Drug
from tracker.services.clinicians import add_clinician, change_clinician, check_clinician_change


@admin.register(Drug)
class DrugAdmin(ScopedAdmin):
    """Seen by every clinician; edited only by superusers (the operators).

    The catalogue is shared by all clinics and carries safety rules (maximum doses,
    clinic-only drugs), so no single clinic's staff may change it for everyone.
    """

    clinic_lookup = None
    list_display = [
        "display_name",
        "drug_class",
        "atc_code",
        "rxnorm_code",
        "usual_range",
        "maximum_display",
        "in_clinic_only",
    ]
    list_filter = ["drug_class", "in_clinic_only", "dose_basis"]
    search_fields = ["name", "display_name", "=atc_code", "=rxnorm_code"]

    @admin.display(description="Usual range")
    def usual_range(self, obj: Drug) -> str:
        return f"{obj.usual_min.normalize():f}–{obj.usual_max.normalize():f} {obj.dose_unit}"

    @admin.display(description="Maximum", ordering="maximum")
    def maximum_display(self, obj: Drug) -> str:
        return obj.describe_limit() if obj.maximum is not None else "no label maximum"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class CrisisContactInline(admin.TabularInline):
    """The numbers a patient in crisis can tap to call, shown after a self-harm answer."""

    model = CrisisContact
    fields = ["label", "number", "position"]
    extra = 1


@admin.register(Clinic)
class ClinicAdmin(ScopedAdmin):
    """Clinics are set up by the operators (superusers) only."""

    clinic_lookup = "pk"
    inlines = [CrisisContactInline]
    list_display = ["name", "slug", "phone", "timezone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class ClinicianForm(forms.ModelForm):
    """Checks the change with the clinicians service, so a refusal shows beside its field."""

    acting_user: Any = None  # set per request by ClinicianAdmin.get_form

    class Meta:
        model = Clinician
        fields = ["user", "clinic", "role", "title", "is_active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        instance = self.instance
        user = data.get("user") or getattr(instance, "user", None)
        clinic = data.get("clinic") or getattr(instance, "clinic", None)
        role = data.get("role")
        if self.acting_user is None or user is None or clinic is None or not role or self.errors:
            return data
        try:
            check_clinician_change(
                by=self.acting_user,
                clinician=instance if instance.pk else None,
                user=user,
                clinic=clinic,
                role=role,
                is_active=bool(data.get("is_active")),
            )
        except ValidationError as exc:
            apply_validation_error(self, exc)
        return data


@admin.register(Clinician)
class ClinicianAdmin(ScopedHistoryAdmin):
    """Staff of the user's clinic. New members and every change of role, clinic or active state
    go through the clinicians service, which refuses what the editor may not do (their own
    role, a role they do not hold, another clinic) and keeps the change in the history."""

    form = ClinicianForm
    clinic_lookup = "clinic"
    list_display = ["__str__", "role", "clinic", "is_active"]
    list_filter = ["role", "is_active"]
    list_select_related = ["user", "clinic"]
    search_fields = ["user__first_name", "user__last_name", "user__username"]
    history_list_display = ["role", "clinic", "is_active"]

    def get_readonly_fields(self, request: HttpRequest, obj: Clinician | None = None) -> list[str]:
        fields = [] if obj is None else ["user"]  # a membership is not moved to another user
        if not request.user.is_superuser:
            fields.append("clinic")
        return fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user" and not request.user.is_superuser:
            # Users not yet attached to anyone, or already staff of this clinic: never
            # another clinic's staff or any patient's login.
            membership = clinician_for(request)
            clinic_id = membership.clinic_id if membership else None
            kwargs["queryset"] = get_user_model().objects.filter(
                Q(clinician__isnull=True, patient__isnull=True, is_superuser=False) | Q(clinician__clinic_id=clinic_id)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Clinician | None = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        membership = clinician_for(request)
        clinic = None if (obj is not None or request.user.is_superuser or membership is None) else membership.clinic

        class RequestClinicianForm(form_class):  # type: ignore[valid-type, misc]
            acting_user = request.user

            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                if clinic is not None:
                    self.instance.clinic = clinic  # new staff join the manager's own clinic

        return RequestClinicianForm

    def save_model(self, request: HttpRequest, obj: Clinician, form: forms.ModelForm, change: bool) -> None:
        if change:
            change_clinician(
                clinician=obj,
                by=request.user,
                role=obj.role,
                clinic=obj.clinic,
                is_active=obj.is_active,
                title=obj.title,
            )
            return
        if not request.user.is_superuser:
            obj.clinic = clinician_for(request).clinic  # type: ignore[union-attr]
        created = add_clinician(user=obj.user, clinic=obj.clinic, role=obj.role, title=obj.title, by=request.user)
        # The admin goes on to log and redirect with obj: make it the saved row.
        obj.pk = created.pk
        obj._state.adding = False
        if not obj.is_active:
            change_clinician(clinician=created, by=request.user, is_active=False)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Clinician]:
        return super().get_queryset(request).select_related("user", "clinic")
