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
from tracker.services.errors import ServiceError

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
    "clinicalmeasurement",
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
            "clinicalmeasurement",
        ),
        "change_flag",
    ),
    "Nurses": _add_change(
        "doseevent",
        "assessment",
        "sideeffectreport",
        "flag",
        "inclinicsession",
        "weightmeasurement",
        "clinicalmeasurement",
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


def role_permissions(role: str) -> set[str]:
    """The permissions ``role`` carries, as ``app_label.codename`` (the form ``has_perms`` takes)."""
    name = ROLE_GROUPS[role]
    return {f"tracker.{codename}" for codename in (*(f"view_{m}" for m in VIEW_MODELS), *ROLE_PERMISSIONS[name])}


def check_clinician_change(
    *,
    by: AbstractBaseUser,
    clinician: Clinician | None,
    user: AbstractBaseUser,
    clinic: Clinic,
    role: str,
    is_active: bool,
) -> None:
    """Refuse a membership change ``by`` may not make; ``clinician`` is None for a new member.

    The rules of least privilege, the same for the admin and any other caller:

    1. Only superusers and active clinic managers (who hold ``add_``/``change_clinician``)
       edit clinicians.
    2. Nobody changes their own role, clinic or active state, superusers included: a second
       person does it, so no one raises their own rights.
    3. Nobody grants a role whose permissions they do not hold themselves (superusers hold
       all). Granting means giving a role to a new member, changing it, or reactivating.
    4. A manager acts only within their own clinic: on its members, and keeping them there.
    """
    if clinician is not None and clinician.pk is None:
        clinician = None
    old = Clinician.objects.get(pk=clinician.pk) if clinician is not None else None
    role_changed = old is None or old.role != role
    clinic_changed = old is not None and old.clinic_id != clinic.pk
    active_changed = old is not None and old.is_active != is_active
    if old is not None and old.user_id == by.pk and (role_changed or clinic_changed or active_changed):
        raise ServiceError("Nobody changes their own role, clinic or active state: ask another manager.")
    if old is None and user.pk == by.pk:
        raise ServiceError("Nobody makes themselves a clinician: ask another manager.")
    if by.is_superuser:
        return
    perm = "tracker.add_clinician" if old is None else "tracker.change_clinician"
    membership = Clinician.objects.filter(user_id=by.pk, is_active=True).first()
    if membership is None or not by.has_perm(perm):
        raise ServiceError("Only clinic managers and operators change clinic staff.")
    if clinic.pk != membership.clinic_id or (old is not None and old.clinic_id != membership.clinic_id):
        raise ServiceError({"clinic": "Managers act only on the staff of their own clinic."})
    # A new member is granted their role even if entered inactive: reactivation is checked too.
    grants = old is None or (is_active and (role_changed or not old.is_active))
    if grants and not by.has_perms(sorted(role_permissions(role))):
        raise ServiceError(
            {
                "role": f"You cannot grant the role {Clinician.Role(role).label}: it carries permissions "
                "you do not hold yourself. Ask an operator (superuser)."
            }
        )


@transaction.atomic
def add_clinician(
    *, user: AbstractBaseUser, clinic: Clinic, role: str, title: str = "", by: AbstractBaseUser | None = None
) -> Clinician:
    """Make ``user`` a staff member of ``clinic`` with the permissions of ``role``.

    ``by`` is the person doing it, checked by ``check_clinician_change``; every interactive
    caller (the admin) passes it. Only set-up code run by the operator (``seed_demo``, tests)
    leaves it out.
    """
    if by is not None:
        check_clinician_change(by=by, clinician=None, user=user, clinic=clinic, role=role, is_active=True)
    clinician = Clinician(user=user, clinic=clinic, role=role, title=title)
    clinician.full_clean()
    clinician._history_user = by  # type: ignore[attr-defined]  # also outside a request
    clinician.save()
    if not user.is_staff:
        user.is_staff = True  # the admin is the clinicians' workspace
        user.save(update_fields=["is_staff"])
    sync_clinician_groups(clinician=clinician)
    return clinician


@transaction.atomic
def change_clinician(
    *,
    clinician: Clinician,
    by: AbstractBaseUser,
    role: str | None = None,
    clinic: Clinic | None = None,
    is_active: bool | None = None,
    title: str | None = None,
) -> Clinician:
    """Change a member's role, clinic, active state or title, as ``by``; None leaves a value as it is.

    Refused with a ``ServiceError`` under the rules of ``check_clinician_change``. The change is
    kept in the clinician's history with the old and new values and who made it.
    """
    current = Clinician.objects.select_for_update().select_related("user", "clinic").get(pk=clinician.pk)
    new_role = current.role if role is None else role
    new_clinic = current.clinic if clinic is None else clinic
    new_active = current.is_active if is_active is None else is_active
    check_clinician_change(
        by=by, clinician=current, user=current.user, clinic=new_clinic, role=new_role, is_active=new_active
    )
    changed = []
    for field, value in (("role", new_role), ("clinic", new_clinic), ("is_active", new_active), ("title", title)):
        if value is not None and getattr(current, field) != value:
            setattr(current, field, value)
            changed.append(field)
    if not changed:
        return current
    current.full_clean()
    current._history_user = by  # type: ignore[attr-defined]
    current.save(update_fields=changed)
    if {"role", "is_active"} & set(changed):
        sync_clinician_groups(clinician=current)
    return current


def change_clinician_role(*, clinician: Clinician, role: str, by: AbstractBaseUser) -> Clinician:
    """Change only the role (see ``change_clinician``)."""
    return change_clinician(clinician=clinician, by=by, role=role)
