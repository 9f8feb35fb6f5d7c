"""Staff two-step sign-in in real headless Chromium: set up, a wrong code, a recovery code.

The clinician reads the secret shown as text on the set-up page and the test computes the code
from it with django_otp.oath.totp, as their phone would. Screenshots go to pytest-playwright's
output folder (``test-results/`` by default, or ``--output``).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from tests.e2e.a11y import blocking_violations
from tests.e2e.conftest import PASSWORD
from tests.factories import ClinicFactory, ClinicianFactory
from tracker.accounts.views import WRONG_CODE, WRONG_SETUP_CODE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def sign_in_with_password(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_staff_sign_in_sets_up_an_authenticator_then_uses_a_recovery_code(
    page: Page, live_server, shots: Path, settings
) -> None:
    # The live server runs in this process, so the setting applies to its requests too.
    settings.TRACKER_REQUIRE_STAFF_MFA = True
    ClinicianFactory(clinic=ClinicFactory(), user__username="dr-mfa")
    page.set_viewport_size({"width": 1366, "height": 900})

    # 1. First sign-in: the password alone leads to the set-up page, not the admin.
    sign_in_with_password(page, live_server.url, "dr-mfa")
    expect(page).to_have_url(f"{live_server.url}/admin/mfa/setup/?next=/admin/")
    expect(page.get_by_role("heading", name="Set up your second sign-in step")).to_be_visible()
    expect(page.get_by_role("img", name="QR code that adds your tracker account")).to_be_visible()
    key = base64.b32decode(page.locator("#totp-secret").inner_text().replace(" ", ""))
    page.screenshot(path=str(shots / "mfa-setup.png"), full_page=True)
    assert blocking_violations(page) == [], "set-up page"

    # 2. A wrong code is refused in words, beside the field, and the admin stays closed.
    right = totp(key)
    page.get_by_label("Code").fill(f"{(right + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator(".errornote")).to_have_text(WRONG_SETUP_CODE)
    page.screenshot(path=str(shots / "mfa-setup-wrong-code.png"), full_page=True)
    assert blocking_violations(page) == [], "set-up page with its refusal"

    # 3. The app's code (after django-otp's 1 s pause that follows a wrong code) confirms it,
    #    and the 10 recovery codes are shown once.
    page.wait_for_timeout(1100)
    page.get_by_label("Code").fill(f"{totp(key):06d}")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("ul.recovery-codes code")
    expect(codes).to_have_count(10)
    recovery = codes.nth(3).inner_text()
    page.screenshot(path=str(shots / "mfa-recovery-codes.png"), full_page=True)
    page.get_by_role("link", name="I have kept them, continue").click()
    expect(page.get_by_role("heading", name="Patients to look at")).to_be_visible()

    # 4. Sign out; the next sign-in asks for a code, and a wrong one is refused.
    page.get_by_role("button", name="Log out").click()
    sign_in_with_password(page, live_server.url, "dr-mfa")
    expect(page).to_have_url(f"{live_server.url}/admin/mfa/verify/?next=/admin/")
    expect(page.get_by_role("heading", name="Type your sign-in code")).to_be_visible()
    page.screenshot(path=str(shots / "mfa-verify.png"), full_page=True)
    assert blocking_violations(page) == [], "code page"
    page.get_by_label("Code").fill("not-a-recovery-code")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".errornote")).to_have_text(WRONG_CODE)
    assert blocking_violations(page) == [], "code page with its refusal"

    # 5. A recovery code, typed in capitals with a space as people do, opens the admin index.
    page.wait_for_timeout(1100)
    page.get_by_label("Code").fill(f"{recovery[:4].upper()} {recovery[4:].upper()}")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Patients to look at")).to_be_visible()
    page.screenshot(path=str(shots / "mfa-signed-in.png"), full_page=True)
