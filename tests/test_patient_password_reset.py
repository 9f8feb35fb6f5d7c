"""A clinic-issued password reset link: the patient's user has no email, so staff hand over the link."""

from __future__ import annotations

import datetime as dt
import re
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.tokens import default_token_generator
from django.test import override_settings

from tests import factories
from tracker.models import Clinician

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-brand-new-long-password-7"


@pytest.fixture
def manager(clinic):
    return factories.ClinicianFactory(clinic=clinic, role=Clinician.Role.MANAGER, user__username="mgr-north")


@pytest.fixture
def patient_user(patient):
    patient.user = factories.UserFactory(username="pat-reset", email="")
    patient.save()
    return patient.user


def reset_url(patient) -> str:
    return f"/admin/tracker/patient/{patient.pk}/password-reset-link/"


def issue(client, manager, patient) -> str:
    client.force_login(manager.user)
    page = client.post(reset_url(patient))
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    link = re.search(r'value="(http://testserver/accounts/password/reset/[^"]+)"', page.content.decode())
    assert link, "the page shows the link"
    client.logout()
    return link.group(1).removeprefix("http://testserver")


def test_the_patient_page_offers_the_action_to_a_manager(client, manager, patient, patient_user):
    client.force_login(manager.user)
    page = client.get(f"/admin/tracker/patient/{patient.pk}/change/").content.decode()
    assert "Issue a password reset link" in page
    confirm = client.get(reset_url(patient)).content.decode()
    assert "pat-reset" in confirm and "works once and for 72 hours" in confirm


def test_the_link_lets_the_patient_choose_a_new_password_once_and_the_issuer_is_logged(
    client, manager, patient, patient_user
):
    path = issue(client, manager, patient)
    entry = LogEntry.objects.get(object_id=str(patient.pk))
    assert (entry.user_id, entry.change_message) == (manager.user_id, "Issued a portal password reset link.")

    form = client.get(path, follow=True)
    assert "Choose a new password" in form.content.decode()
    set_url = form.redirect_chain[-1][0]
    weak = client.post(set_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 200  # the project's validators refuse it, beside the field
    assert "This password is too short" in weak.content.decode()
    done = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert client.post("/accounts/login/", {"username": "pat-reset", "password": NEW_PASSWORD}).status_code == 302
    client.logout()
    again = client.get(path, follow=True).content.decode()
    assert "This link does not work any more" in again  # used once


@override_settings(PASSWORD_RESET_TIMEOUT=3600)
def test_the_link_expires(client, manager, patient, patient_user):
    path = issue(client, manager, patient)
    two_hours_later = dt.datetime.now() + dt.timedelta(hours=2)  # noqa: DTZ005 (Django's tokens use naive local time)
    with mock.patch.object(default_token_generator, "_now", return_value=two_hours_later):
        page = client.get(path, follow=True).content.decode()
    assert "This link does not work any more" in page


def test_staff_without_change_permission_cannot_issue_one(client, clinician, patient, patient_user):
    client.force_login(clinician.user)  # a prescriber: may not change the patient's record
    assert (
        "Issue a password reset link" not in client.get(f"/admin/tracker/patient/{patient.pk}/change/").content.decode()
    )
    response = client.post(reset_url(patient))
    assert response.status_code == 403
    assert "clinic managers" in response.content.decode()
    assert not LogEntry.objects.exists()


def test_no_link_for_a_patient_without_a_login_or_of_another_clinic(client, manager, patient, other_patient):
    client.force_login(manager.user)
    response = client.post(reset_url(patient))
    assert response.status_code == 400
    assert "has no portal login" in response.content.decode()
    assert client.post(reset_url(other_patient)).status_code == 404
    assert not LogEntry.objects.exists()
