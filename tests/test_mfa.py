"""Staff second sign-in factor (django-otp): set up at first sign-in, then a code or a recovery code.

Each test signs in through the admin's own sign-in form, as a clinician does, and then uses the
pages the middleware sends them to. The codes are computed here from the device's key with
django_otp.oath.totp, as the clinician's phone would.
"""

from __future__ import annotations

import base64
import re

import pytest
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # the factories' password
mfa_on = override_settings(TRACKER_REQUIRE_STAFF_MFA=True)


def sign_in(client, user) -> None:
    response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302, "the password step should succeed"


def sign_in_again(client, user) -> None:
    """Sign out, then the password step again: the new session has no second factor yet."""
    client.post("/admin/logout/")
    sign_in(client, user)


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the phone shows (``steps_ahead`` 30-second steps later, within the allowed drift)."""
    return f"{totp(device.bin_key, drift=steps_ahead):06d}"


def set_up(client, user) -> list[str]:
    """Sign in and finish the set-up page; returns the recovery codes shown."""
    sign_in(client, user)
    client.get("/admin/mfa/setup/")
    device = TOTPDevice.objects.get(user=user)
    response = client.post("/admin/mfa/setup/", {"code": code_for(device), "next": "/admin/"})
    assert response.status_code == 200
    return re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())


@mfa_on
def test_first_sign_in_without_a_device_goes_to_set_up_before_any_admin_page(client, clinician, patient):
    sign_in(client, clinician.user)
    for url in (
        "/admin/",
        f"/admin/tracker/patient/{patient.pk}/change/",
        f"/admin/tracker/patient/{patient.pk}/timeline/",
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/mfa/?next=")
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/mfa/setup/")
    page = response.content.decode()
    device = TOTPDevice.objects.get(user=clinician.user, confirmed=False)
    secret = base64.b32encode(device.bin_key).decode()
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page  # the secret as text
    assert 'src="data:image/svg+xml;base64,' in page  # the QR code, inline, no CDN
    assert "Patients" not in page  # no clinical page is shown before the second step


@mfa_on
def test_set_up_with_a_code_from_the_app_opens_the_admin_and_shows_ten_recovery_codes_once(client, clinician, patient):
    sign_in(client, clinician.user)
    client.get("/admin/mfa/setup/")
    device = TOTPDevice.objects.get(user=clinician.user)
    response = client.post(
        "/admin/mfa/setup/", {"code": code_for(device), "next": f"/admin/tracker/patient/{patient.pk}/change/"}
    )
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "no-store" in response["Cache-Control"]
    assert f'href="/admin/tracker/patient/{patient.pk}/change/"' in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    assert client.get(f"/admin/tracker/patient/{patient.pk}/change/").status_code == 200
    # The codes are not shown again: the set-up page now sends the user on.
    assert client.get("/admin/mfa/setup/").status_code == 302


@mfa_on
@override_settings(OTP_TOTP_THROTTLE_FACTOR=0)
def test_a_wrong_set_up_code_is_refused_by_name_and_the_admin_stays_closed(client, clinician):
    sign_in(client, clinician.user)
    client.get("/admin/mfa/setup/")
    device = TOTPDevice.objects.get(user=clinician.user)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = client.post("/admin/mfa/setup/", {"code": wrong})
    assert response.status_code == 200
    assert "That code did not match" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get("/admin/").status_code == 302
    response = client.post("/admin/mfa/setup/", {"code": ""})
    assert "Type the code from your authenticator app" in response.content.decode()
    # The same secret after the mistake: the phone already holds it.
    assert TOTPDevice.objects.filter(user=clinician.user).count() == 1
    assert client.post("/admin/mfa/setup/", {"code": code_for(device)}).status_code == 200
    assert client.get("/admin/").status_code == 200


@mfa_on
def test_next_sign_in_asks_for_the_code_and_a_wrong_one_keeps_the_admin_closed(client, clinician):
    set_up(client, clinician.user)
    sign_in_again(client, clinician.user)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/mfa/verify/")
    response = client.post("/admin/mfa/verify/", {"code": "000000", "next": "/admin/"})
    assert response.status_code == 200
    assert "That code did not match" in response.content.decode()
    assert client.get("/admin/").status_code == 302


@mfa_on
def test_next_sign_in_with_the_app_code_opens_the_admin(client, clinician):
    set_up(client, clinician.user)
    sign_in_again(client, clinician.user)
    device = TOTPDevice.objects.get(user=clinician.user, confirmed=True)
    # The set-up code is spent (no replay); the phone's next code is accepted.
    response = client.post("/admin/mfa/verify/", {"code": code_for(device, steps_ahead=1), "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@mfa_on
def test_a_recovery_code_works_once(client, clinician):
    codes = set_up(client, clinician.user)
    sign_in_again(client, clinician.user)
    response = client.post("/admin/mfa/verify/", {"code": codes[0].upper(), "next": "/admin/"})  # any case
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert StaticToken.objects.filter(device__user=clinician.user).count() == 9
    sign_in_again(client, clinician.user)
    response = client.post("/admin/mfa/verify/", {"code": codes[0], "next": "/admin/"})
    assert response.status_code == 200
    assert "That code did not match" in response.content.decode()
    assert client.get("/admin/").status_code == 302


@mfa_on
def test_a_password_alone_cannot_enrol_another_phone(client, clinician):
    set_up(client, clinician.user)
    sign_in_again(client, clinician.user)
    response = client.get("/admin/mfa/setup/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/mfa/verify/")
    assert TOTPDevice.objects.filter(user=clinician.user).count() == 1


@mfa_on
def test_an_unverified_staff_session_gets_no_api_answer(client, clinician, patient):
    sign_in(client, clinician.user)
    response = client.get(f"/api/patients/{patient.pk}/")
    assert response.status_code == 403
    assert "second sign-in factor" in response.json()["detail"]


@mfa_on
def test_patients_keep_password_sign_in(client, patient):
    patient.user = factories.UserFactory(username="pat-mfa")
    patient.save()
    response = client.post("/accounts/login/", {"username": "pat-mfa", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_with_the_setting_off_the_password_is_enough(client, clinician, patient):
    sign_in(client, clinician.user)
    assert client.get("/admin/").status_code == 200
    assert client.get(f"/admin/tracker/patient/{patient.pk}/change/").status_code == 200
    assert not TOTPDevice.objects.exists()
