"""Nothing clinical is hard-deleted from the admin; wrong records are marked entered in error."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from tests import factories
from tests.test_admin_scoping import admin_url, make_course
from tracker.models import Flag, Patient

CLINICAL_MODELS = ["patient", "prescription", "doseschedule", "doseevent", "assessment", "sideeffectreport", "flag"]


def offered_actions(response) -> set[str]:
    """The action names in the changelist's action menu (no menu when there are none)."""
    form = response.context["action_form"]
    return set() if form is None else set(dict(form.fields["action"].choices))


@pytest.fixture
def root(client, db):
    """A superuser: holds every permission, so refusals come from the rule, not a missing grant."""
    user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def course(patient, clinician):
    return make_course(patient, clinician)


@pytest.mark.parametrize("model", CLINICAL_MODELS)
def test_delete_view_is_refused(client, root, course, model):
    record = course.records()[model]
    url = admin_url("delete", model, record.pk)
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert type(record).objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize("model", CLINICAL_MODELS)
def test_bulk_delete_action_is_not_offered_or_run(client, root, course, model):
    record = course.records()[model]
    changelist = admin_url("changelist", model)
    response = client.get(changelist)
    assert "delete_selected" not in offered_actions(response)

    response = client.post(
        changelist, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [record.pk], "index": 0, "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert type(record).objects.filter(pk=record.pk).exists()


def test_mark_entered_in_error_asks_for_a_reason_then_keeps_the_row(client, clinician, course):
    nurse = factories.ClinicianFactory(clinic=clinician.clinic, role="nurse", user__username="nurse-north")
    client.force_login(nurse.user)
    event = course.dose_event
    changelist = admin_url("changelist", "doseevent")
    selection = {"action": "mark_entered_in_error", ACTION_CHECKBOX_NAME: [event.pk]}

    # 1. Choosing the action shows the confirmation page, with a reason box; nothing changes yet.
    response = client.post(changelist, {**selection, "index": 0})
    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()
    event.refresh_from_db()
    assert event.entered_in_error_at is None

    # 2. Confirming without a reason is refused on the same page.
    response = client.post(changelist, {**selection, "confirm": "yes", "reason": "  "})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    event.refresh_from_db()
    assert event.entered_in_error_at is None

    # 3. With a reason: the row stays, marked with who and why, and the history says so.
    response = client.post(changelist, {**selection, "confirm": "yes", "reason": "Logged for the wrong patient"})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.entered_in_error_at is not None
    assert event.entered_in_error_by == nurse.user
    assert event.entered_in_error_reason == "Logged for the wrong patient"
    latest = event.history.latest()
    assert latest.history_user == nurse.user
    assert latest.history_change_reason == "Entered in error: Logged for the wrong patient"


def test_mark_entered_in_error_on_patient_changelist(client, root, course):
    # The patient changelist's queryset is annotated; the action must still lock and mark.
    response = client.post(
        admin_url("changelist", "patient"),
        {
            "action": "mark_entered_in_error",
            ACTION_CHECKBOX_NAME: [course.patient.pk],
            "confirm": "yes",
            "reason": "Duplicate registration",
        },
    )
    assert response.status_code == 302
    patient = Patient.objects.get(pk=course.patient.pk)
    assert patient.entered_in_error_reason == "Duplicate registration"
    assert patient.entered_in_error_by == root


def test_action_needs_change_permission(client, course):
    # A clinic manager may view dose events but not change them: no action offered.
    from tests import factories

    manager = factories.ClinicianFactory(clinic=course.prescription.patient.clinic, role="manager")
    client.force_login(manager.user)
    response = client.get(admin_url("changelist", "doseevent"))
    assert "mark_entered_in_error" not in offered_actions(response)


def test_flags_have_no_entered_in_error_action(client, root, course):
    # Flags are resolved, not entered in error: the model has no such marker.
    response = client.get(admin_url("changelist", "flag"))
    assert "mark_entered_in_error" not in offered_actions(response)
    assert Flag.objects.filter(pk=course.flag.pk).exists()


def test_read_mostly_admins_have_no_add_form(client, root):
    for model in ["doseschedule", "doseevent", "assessment", "sideeffectreport", "flag"]:
        assert client.get(admin_url("add", model)).status_code == 403, model
    assert client.get(reverse("admin:tracker_drug_changelist")).status_code == 200
