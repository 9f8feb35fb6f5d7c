"""Clinic staff: membership of a clinic, and the auth group that carries a role's permissions.

The groups are first created by migration 0003 (which keeps its own frozen copy of the
permission table, as migrations must). ``ROLE_PERMISSIONS`` below is the live copy: it
re-creates a missing group, e.g. after a test database flush, so a new clinician never
silently ends up with no permissions.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

from tracker.models import Clinic, Clinician

ROLE_GROUPS: dict[str, str] = {
    Clinician.Role.PRESCRIBER: "Prescribers",
    Clinician.Role.NURSE: "Nurses",
    Clinician.Role.MANAGER: "Clinic managers",
}

# Every role may look at every tracker model; the clinic scoping in the admin limits which rows.
VIEW_MODELS = (
    "clinic",
    "clinician",
    "patient",
    "drug",
    "prescription",
    "doseschedule",
    "planneddose",
    "doseevent",
    "assessment",
    "sideeffectreport",
    "flag",
    "inclinicsession",
    "weightmeasurement",
)


def _add_change(*models: str) -> tuple[str, ...]:
    return tuple(f"{action}_{model}" for model in models for action in ("add", "change"))


ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # Prescribers also work flags: they are clinicians on the worklist too.
    "Prescribers": (
        *_add_change(
            "prescription",
            "doseschedule",
            "assessment",
            "inclinicsession",
            "doseevent",
            "sideeffectreport",
            "weightmeasurement",
        ),
        "change_flag",
    ),
    "Nurses": _add_change(
        "doseevent", "assessment", "sideeffectreport", "flag", "inclinicsession", "weightmeasurement"
    ),
    "Clinic managers": _add_change("patient", "clinician", "drug"),
}


def group_for_role(role: str) -> Group:
    """The auth group of ``role``, created with its permissions if it is missing."""
    name = ROLE_GROUPS[role]
    group, created = Group.objects.get_or_create(name=name)
    if created:
        codenames = {f"view_{model}" for model in VIEW_MODELS} | set(ROLE_PERMISSIONS[name])
        group.permissions.set(Permission.objects.filter(content_type__app_label="tracker", codename__in=codenames))
    return group


@transaction.atomic
def sync_clinician_groups(*, clinician: Clinician) -> None:
    """Put the user in exactly the group of the clinician's role (none while inactive).

    Call after the role or ``is_active`` changes; other, non-role groups are left alone.
    """
    user = clinician.user
    user.groups.remove(*Group.objects.filter(name__in=ROLE_GROUPS.values()))
    if clinician.is_active:
        user.groups.add(group_for_role(clinician.role))


@transaction.atomic
def add_clinician(*, user: AbstractBaseUser, clinic: Clinic, role: str, title: str = "") -> Clinician:
    """Make ``user`` a staff member of ``clinic`` with the permissions of ``role``."""
    clinician = Clinician(user=user, clinic=clinic, role=role, title=title)
    clinician.full_clean()
    clinician.save()
    if not user.is_staff:
        user.is_staff = True  # the admin is the clinicians' workspace
        user.save(update_fields=["is_staff"])
    sync_clinician_groups(clinician=clinician)
    return clinician


@transaction.atomic
def change_clinician_role(*, clinician: Clinician, role: str) -> Clinician:
    """Change the role and move the user to the matching group in the same transaction."""
    clinician.role = role
    clinician.full_clean()
    clinician.save(update_fields=["role"])
    sync_clinician_groups(clinician=clinician)
    return clinician
