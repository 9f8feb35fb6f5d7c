"""Least privilege for clinic staff: who may change whose role, in the admin and in the service.

The rules (tracker/services/clinicians.py ``check_clinician_change``): nobody changes their own
role; nobody grants a role whose permissions they lack (superusers hold all); managers act only
within their clinic; prescribers and nurses do not edit staff. Every case is run through the
admin's change form and through the service directly, and both must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AbstractBaseUser

from tests import factories
from tests.test_admin_scoping import admin_url
from tracker.models import Clinic, Clinician
from tracker.services.clinicians import add_clinician, change_clinician
from tracker.services.errors import ServiceError

ROLES = ["prescriber", "nurse", "manager"]
ACTORS = ["superuser", "manager", "prescriber", "nurse"]
TARGETS = ["self", "colleague", "other-clinic"]


def expected_allowed(actor: str, target: str, to_role: str) -> bool:
    if target == "self":
        return False  # nobody changes their own role, superusers included
    if actor == "superuser":
        return True
    if actor != "manager" or target == "other-clinic":
        return False  # only managers edit staff, and only their own clinic's
    return to_role == "manager"  # the only role whose permissions a manager holds


def cases() -> list[tuple[str, str, str, str]]:
    """(actor, target, from_role, to_role); on "self", a non-superuser's from_role is their own."""
    out = []
    for actor in ACTORS:
        for target in TARGETS:
            for from_role in ROLES:
                if target == "self" and actor != "superuser" and from_role != actor:
                    continue
                for to_role in ROLES:
                    if to_role != from_role:
                        out.append((actor, target, from_role, to_role))
    return out


@dataclass
class World:
    north: Clinic
    south: Clinic
    actor: AbstractBaseUser
    target: Clinician


def build(actor: str, target: str, from_role: str) -> World:
    north = factories.ClinicFactory(name="Northside Clinic", slug="northside")
    south = factories.ClinicFactory(name="Southside Clinic", slug="southside")
    if actor == "superuser":
        user = factories.UserFactory(username="operator", is_staff=True, is_superuser=True)
        own = factories.ClinicianFactory(user=user, clinic=north, role=from_role) if target == "self" else None
    else:
        own = factories.ClinicianFactory(clinic=north, role=actor, user__username="actor")
        user = own.user
    if target == "self":
        subject = own
    else:
        clinic = north if target == "colleague" else south
        subject = factories.ClinicianFactory(clinic=clinic, role=from_role, user__username="subject")
    return World(north, south, user, subject)


def group_names(clinician: Clinician) -> list[str]:
    return list(clinician.user.groups.values_list("name", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize(("actor", "target", "from_role", "to_role"), cases())
def test_role_change_through_the_service(actor, target, from_role, to_role):
    world = build(actor, target, from_role)
    if expected_allowed(actor, target, to_role):
        change_clinician(clinician=world.target, by=world.actor, role=to_role)
    else:
        with pytest.raises(ServiceError):
            change_clinician(clinician=world.target, by=world.actor, role=to_role)
    world.target.refresh_from_db()
    assert world.target.role == (to_role if expected_allowed(actor, target, to_role) else from_role)


@pytest.mark.django_db
@pytest.mark.parametrize(("actor", "target", "from_role", "to_role"), cases())
def test_role_change_through_the_admin(client, actor, target, from_role, to_role):
    world = build(actor, target, from_role)
    client.force_login(world.actor)
    subject = world.target
    response = client.post(
        admin_url("change", "clinician", subject.pk),
        {"role": to_role, "title": subject.title, "is_active": "on", "clinic": subject.clinic_id},
    )
    subject.refresh_from_db()
    if expected_allowed(actor, target, to_role):
        assert response.status_code == 302
        assert subject.role == to_role
        assert group_names(subject) == [
            {"prescriber": "Prescribers", "nurse": "Nurses"}.get(to_role, "Clinic managers")
        ]
        # The history keeps who changed it, from what, to what.
        latest = subject.history.latest()
        assert (latest.history_user, latest.role, latest.prev_record.role) == (world.actor, to_role, from_role)
        return
    assert subject.role == from_role
    if actor in ("prescriber", "nurse"):
        # No change_clinician permission; another clinic's rows answer 404 like missing ones.
        assert response.status_code == (404 if target == "other-clinic" else 403)
    elif actor == "manager" and target == "other-clinic":
        assert response.status_code == 404
    else:
        assert response.status_code == 200  # the form again, saying why
        errors = response.context["adminform"].form.errors
        assert errors, "a refusal must say why"
        text = " ".join(str(e) for e in errors.values())
        assert ("own role" in text) if target == "self" else ("cannot grant the role" in text)


@pytest.mark.django_db
class TestOtherChanges:
    def test_manager_cannot_add_a_prescriber_but_an_operator_can(self, client, clinic):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager")
        newcomer = factories.UserFactory(username="newcomer")
        client.force_login(manager.user)
        response = client.post(admin_url("add", "clinician"), {"user": newcomer.pk, "role": "prescriber", "title": ""})
        assert response.status_code == 200
        assert "cannot grant the role" in str(response.context["adminform"].form.errors)
        assert not Clinician.objects.filter(user=newcomer).exists()
        with pytest.raises(ServiceError):
            add_clinician(user=newcomer, clinic=clinic, role="prescriber", by=manager.user)

        operator = factories.UserFactory(username="operator", is_staff=True, is_superuser=True)
        client.force_login(operator)
        response = client.post(
            admin_url("add", "clinician"),
            {"user": newcomer.pk, "role": "prescriber", "title": "", "clinic": clinic.pk, "is_active": "on"},
        )
        assert response.status_code == 302
        created = Clinician.objects.get(user=newcomer)
        assert created.history.get().history_user == operator

    def test_manager_deactivates_a_colleague_but_cannot_reactivate_a_prescriber(self, client, clinic, clinician):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager")
        client.force_login(manager.user)
        url = admin_url("change", "clinician", clinician.pk)
        response = client.post(url, {"role": "prescriber", "title": "Dr"})  # is_active unticked
        assert response.status_code == 302
        clinician.refresh_from_db()
        assert not clinician.is_active
        assert group_names(clinician) == []
        response = client.post(url, {"role": "prescriber", "title": "Dr", "is_active": "on"})
        assert response.status_code == 200
        clinician.refresh_from_db()
        assert not clinician.is_active
        # The history has both the deactivation and who did it.
        latest = clinician.history.latest()
        assert (latest.is_active, latest.prev_record.is_active, latest.history_user) == (False, True, manager.user)
        assert client.get(admin_url("history", "clinician", clinician.pk)).status_code == 200

    def test_nobody_deactivates_themselves(self, clinic):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager")
        with pytest.raises(ServiceError, match="own role"):
            change_clinician(clinician=manager, by=manager.user, is_active=False)

    def test_manager_edits_a_colleagues_title(self, client, clinic, clinician):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager")
        client.force_login(manager.user)
        response = client.post(
            admin_url("change", "clinician", clinician.pk), {"role": "prescriber", "title": "Prof", "is_active": "on"}
        )
        assert response.status_code == 302
        clinician.refresh_from_db()
        assert clinician.title == "Prof"

    def test_only_operators_move_staff_between_clinics(self, clinic, other_clinic, clinician):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager")
        with pytest.raises(ServiceError, match="own clinic"):
            change_clinician(clinician=clinician, by=manager.user, clinic=other_clinic)
        operator = factories.UserFactory(username="operator", is_staff=True, is_superuser=True)
        change_clinician(clinician=clinician, by=operator, clinic=other_clinic)
        clinician.refresh_from_db()
        assert clinician.clinic == other_clinic
        latest = clinician.history.latest()
        assert (latest.clinic_id, latest.prev_record.clinic_id) == (other_clinic.pk, clinic.pk)

    def test_the_api_has_no_way_to_change_staff(self, client, clinic):
        """Staff are changed in the admin only; if an API endpoint is added it must call the service."""
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager")
        client.force_login(manager.user)
        for path in ("/api/clinicians/", "/api/staff/", "/api/users/"):
            assert client.get(path).status_code == 404
