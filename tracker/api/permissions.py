"""Who may reach what: a clinician their clinic's patients, a patient only themselves.

Scoping is done in ``get_queryset`` (see ``Actor.scope``), never by object permissions, so a
list cannot leak rows and an id outside the caller's reach answers 404 like a missing one.
The permission classes below only decide which *kinds* of request a role may make (403).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tracker.models import Clinician, Patient


@dataclass(frozen=True)
class Actor:
    """The caller's role in the tracker: an active clinician, a patient, or neither."""

    clinician: Clinician | None = None
    patient: Patient | None = None

    @property
    def is_clinician(self) -> bool:
        return self.clinician is not None

    @property
    def is_patient(self) -> bool:
        return self.patient is not None

    def scope(self, queryset: QuerySet, patient_path: str = "patient") -> QuerySet:
        """Rows of ``queryset`` the actor may see; ``patient_path`` leads from the model to Patient."""
        to_patient = f"{patient_path}__" if patient_path else ""
        if self.clinician is not None:
            return queryset.filter(**{f"{to_patient}clinic_id": self.clinician.clinic_id})
        if self.patient is not None:
            return queryset.filter(**{f"{to_patient}pk": self.patient.pk})
        return queryset.none()


def actor_for(request: Request) -> Actor:
    """Look the caller's role up once per request (two indexed queries at most)."""
    cached = getattr(request, "_tracker_actor", None)
    if cached is not None:
        return cached
    user = request.user
    actor = Actor()
    if user.is_authenticated:
        clinician = Clinician.objects.filter(user=user, is_active=True).first()
        if clinician is not None:
            actor = Actor(clinician=clinician)
        else:
            actor = Actor(patient=Patient.objects.current().filter(user=user).first())
    request._tracker_actor = actor  # type: ignore[attr-defined]
    return actor


class HasTrackerRole(BasePermission):
    """A signed-in user who is neither an active clinician nor a patient reaches nothing."""

    message = "This account is neither an active clinician nor a patient of a clinic."

    def has_permission(self, request: Request, view: object) -> bool:
        actor = actor_for(request)
        return actor.is_clinician or actor.is_patient


class ClinicianOnly(BasePermission):
    """Clinical work (flags, corrections, prescribing) is for clinic staff only."""

    message = "Only clinic staff may do this."

    def has_permission(self, request: Request, view: object) -> bool:
        return actor_for(request).is_clinician


class ClinicianOrPatientCreates(BasePermission):
    """Clinicians may read and write; a patient may read and POST their own reports."""

    message = "Patients may only add their own reports here."

    def has_permission(self, request: Request, view: object) -> bool:
        actor = actor_for(request)
        if actor.is_clinician:
            return True
        return actor.is_patient and request.method in ("GET", "HEAD", "OPTIONS", "POST")


class PrescriberOnly(BasePermission):
    """Prescribing and dose changes need a prescriber's role (clinical-reference: prescribers only)."""

    message = "Only a prescriber may prescribe or change a dose."

    def has_permission(self, request: Request, view: object) -> bool:
        actor = actor_for(request)
        return actor.clinician is not None and actor.clinician.can_prescribe


class StaffModelPermission(BasePermission):
    """A clinician's write also needs their role's model permission, as in the admin.

    The role groups (tracker/services/clinicians.py) say who may add or change what: a
    clinic manager may not resolve flags, a nurse may not mark a prescription in error.
    Patients are governed by the classes above and by scoping, not by model permissions.
    """

    message = "Your role does not allow this change."
    ADDING: frozenset[str] = frozenset({"create", "outside_clinic_report"})

    def has_permission(self, request: Request, view: object) -> bool:
        action = getattr(view, "action", None)
        if action is None or request.method in ("GET", "HEAD", "OPTIONS") or not actor_for(request).is_clinician:
            return True  # reads, and methods with no handler (answered 405 next)
        model = view.base_queryset().model._meta  # type: ignore[attr-defined]
        verb = "add" if action in self.ADDING else "change"
        return request.user.has_perm(f"{model.app_label}.{verb}_{model.model_name}")
