"""Role groups (migration 0003), the clinicians service, and who edits clinicians and the catalogue."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import factories
from tests.test_admin_scoping import admin_url
from tracker.models import Clinician, Drug
from tracker.services.clinicians import ROLE_GROUPS, add_clinician, change_clinician_role, sync_clinician_groups

migration_0003 = importlib.import_module("tracker.migrations.0003_clinician_groups")


def codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


@pytest.mark.django_db
class TestGroupsMigration:
    def test_groups_exist_with_their_permissions(self):
        prescribers, nurses, managers = codenames("Prescribers"), codenames("Nurses"), codenames("Clinic managers")
        for perms in (prescribers, nurses, managers):
            assert {"view_patient", "view_prescription", "view_flag", "view_drug"} <= perms
            assert not {p for p in perms if p.startswith("delete_")}
        assert {"add_prescription", "change_prescription", "add_doseschedule", "add_assessment"} <= prescribers
        assert "add_patient" not in prescribers
        assert {"add_doseevent", "change_doseevent", "add_sideeffectreport", "change_flag"} <= nurses
        assert "add_prescription" not in nurses
        assert {"add_patient", "change_patient", "add_clinician", "change_clinician"} <= managers

    def test_weights_are_recorded_by_prescribers_and_nurses_and_viewed_by_managers(self):
        recording = {"view_weightmeasurement", "add_weightmeasurement", "change_weightmeasurement"}
        assert recording <= codenames("Prescribers")
        assert recording <= codenames("Nurses")
        assert {p for p in codenames("Clinic managers") if p.endswith("_weightmeasurement")} == {
            "view_weightmeasurement"
        }

    def test_live_role_table_grants_weights_as_the_migration_does(self):
        Group.objects.filter(name__in=ROLE_GROUPS.values()).delete()  # re-created from the live table
        for role, name in ROLE_GROUPS.items():
            sync_clinician_groups(clinician=factories.ClinicianFactory(role=role))
            granted = {p for p in codenames(name) if p.endswith("_weightmeasurement")}
            assert granted == (
                {"view_weightmeasurement"}
                if role == "manager"
                else {"view_weightmeasurement", "add_weightmeasurement", "change_weightmeasurement"}
            )

    def test_reverse_removes_the_groups_and_forward_restores_them(self):
        # The historical models, as the migration sees them (never the live app registry).
        state_apps = MigrationExecutor(connection).loader.project_state(("tracker", "0003_clinician_groups")).apps
        editor = SimpleNamespace(connection=connection)
        migration_0003.remove_groups(state_apps, editor)
        assert not Group.objects.filter(name__in=ROLE_GROUPS.values()).exists()
        migration_0003.create_groups(state_apps, editor)
        assert "add_prescription" in codenames("Prescribers")


@pytest.mark.django_db
class TestClinicianService:
    def test_add_clinician_makes_staff_in_the_role_group(self, clinic):
        user = factories.UserFactory(username="new-nurse")
        clinician = add_clinician(user=user, clinic=clinic, role=Clinician.Role.NURSE, title="RN")
        user.refresh_from_db()
        assert user.is_staff
        assert list(user.groups.values_list("name", flat=True)) == ["Nurses"]
        assert clinician.clinic == clinic
        assert user.has_perm("tracker.add_doseevent")

    def test_role_change_moves_the_group(self, clinician):
        operator = factories.UserFactory(username="operator", is_staff=True, is_superuser=True)
        change_clinician_role(clinician=clinician, role=Clinician.Role.MANAGER, by=operator)
        assert list(clinician.user.groups.values_list("name", flat=True)) == ["Clinic managers"]

    def test_inactive_clinician_loses_role_group_but_keeps_others(self, clinician):
        other = Group.objects.create(name="Research")
        clinician.user.groups.add(other)
        clinician.is_active = False
        clinician.save()
        sync_clinician_groups(clinician=clinician)
        assert list(clinician.user.groups.values_list("name", flat=True)) == ["Research"]

    def test_missing_group_is_recreated_with_permissions(self, clinic):
        Group.objects.filter(name="Nurses").delete()  # e.g. after a test-database flush
        user = factories.UserFactory(username="nurse-2")
        add_clinician(user=user, clinic=clinic, role=Clinician.Role.NURSE)
        assert "add_doseevent" in codenames("Nurses")


class TestClinicianAdmin:
    def test_manager_adds_staff_to_own_clinic_through_the_service(self, client, clinic, other_clinic):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        newcomer = factories.UserFactory(username="newcomer")
        client.force_login(manager.user)
        response = client.post(
            admin_url("add", "clinician"),
            # A manager grants only the manager role: the clinical roles carry permissions they lack.
            {"user": newcomer.pk, "role": "manager", "title": "", "is_active": "on", "clinic": other_clinic.pk},
        )
        assert response.status_code == 302
        membership = Clinician.objects.get(user=newcomer)
        assert membership.clinic == clinic
        newcomer.refresh_from_db()
        assert newcomer.is_staff
        assert list(newcomer.groups.values_list("name", flat=True)) == ["Clinic managers"]

    def test_role_change_in_admin_resyncs_groups(self, client, clinic, clinician):
        operator = factories.UserFactory(username="operator", is_staff=True, is_superuser=True)
        client.force_login(operator)
        response = client.post(
            admin_url("change", "clinician", clinician.pk),
            {"role": "nurse", "title": "Dr", "is_active": "on", "clinic": clinic.pk},
        )
        assert response.status_code == 302
        assert list(clinician.user.groups.values_list("name", flat=True)) == ["Nurses"]

    def test_user_choices_exclude_other_clinics_staff_and_patients(self, client, clinic, other_clinician):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        patient_user = factories.UserFactory(username="patient-login")
        factories.PatientFactory(clinic=clinic, user=patient_user)
        free = factories.UserFactory(username="free")
        client.force_login(manager.user)
        choices = set(client.get(admin_url("add", "clinician")).context["adminform"].form.fields["user"].queryset)
        assert free in choices
        assert other_clinician.user not in choices
        assert patient_user not in choices


class TestDrugCatalogue:
    def test_every_clinician_sees_it_but_only_operators_edit(self, client, clinic, clinician):
        sertraline = Drug.objects.get(name="sertraline")
        client.force_login(clinician.user)
        assert client.get(admin_url("changelist", "drug")).status_code == 200
        page = client.get(admin_url("change", "drug", sertraline.pk))
        assert page.context["has_change_permission"] is False

        # Not a clinic manager either: the catalogue and its safety limits are shared by every clinic.
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        page = client.get(admin_url("change", "drug", sertraline.pk))
        assert page.context["has_change_permission"] is False
        operator = factories.UserFactory(username="operator", is_staff=True, is_superuser=True)
        client.force_login(operator)
        page = client.get(admin_url("change", "drug", sertraline.pk))
        assert page.context["has_change_permission"] is True

    def test_list_shows_codes_ranges_and_maximum(self, client, clinician):
        client.force_login(clinician.user)
        content = client.get(admin_url("changelist", "drug"), {"q": "sertraline"}).content.decode()
        for text in ("N06AB06", "36437", "50–200 mg", "200 mg per local calendar day"):
            assert text in content


@pytest.mark.django_db
def test_recreated_groups_match_what_the_migrations_granted():
    """The live permission table and migrations 0003 + 0007 agree, so a group re-created after a
    flush has the same permissions as one made by migrating."""
    from django.contrib.auth.models import Group

    from tracker.services.clinicians import ROLE_GROUPS, group_for_role

    migrated = {g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    Group.objects.all().delete()
    for role in ROLE_GROUPS:
        group = group_for_role(role)
        assert set(group.permissions.values_list("codename", flat=True)) == migrated[group.name]
