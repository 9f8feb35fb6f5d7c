"""Sign-in security: brute-force lockout for patients and clinicians, session expiry, strong passwords."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # the factories' password


@pytest.fixture
def patient_user(patient):
    patient.user = factories.UserFactory(username="pat-login")
    patient.save()
    return patient.user


def fail(client, url: str, username: str, times: int) -> None:
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong-password-guess"})
        assert response.status_code == 200  # the form again, with its error


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_too_many_failed_logins_lock_the_account_even_with_the_right_password(client, url, patient_user, clinician):
    username = patient_user.username if url.startswith("/accounts") else clinician.user.username
    fail(client, url, username, settings.AXES_FAILURE_LIMIT - 1)
    response = client.post(url, {"username": username, "password": "wrong-password-guess"})
    assert response.status_code == 429
    assert "Sign-in is paused for this account" in response.content.decode()
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_good_login_below_the_limit_resets_the_count(client, patient_user):
    fail(client, "/accounts/login/", patient_user.username, settings.AXES_FAILURE_LIMIT - 1)
    assert client.post("/accounts/login/", {"username": patient_user.username, "password": PASSWORD}).status_code == 302
    client.post("/accounts/logout/")
    fail(client, "/accounts/login/", patient_user.username, settings.AXES_FAILURE_LIMIT - 1)
    response = client.post("/accounts/login/", {"username": patient_user.username, "password": PASSWORD})
    assert response.status_code == 302


def test_lockout_is_per_account_not_for_everyone(client, patient_user, clinician):
    fail(client, "/accounts/login/", "someone-else", settings.AXES_FAILURE_LIMIT - 1)
    assert client.post("/accounts/login/", {"username": "someone-else", "password": "x-guess"}).status_code == 429
    response = client.post("/accounts/login/", {"username": patient_user.username, "password": PASSWORD})
    assert response.status_code == 302


def test_sessions_expire_after_eight_hours_and_at_browser_close(client, patient_user):
    client.post("/accounts/login/", {"username": patient_user.username, "password": PASSWORD})
    assert client.session.get_expiry_age() == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def test_weak_new_password_is_refused_with_a_reason(client, patient_user):
    client.post("/accounts/login/", {"username": patient_user.username, "password": PASSWORD})
    response = client.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": "password123", "new_password2": "password123"},
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "This password is too short. It must contain at least 12 characters." in text
    assert "This password is too common." in text
