"""A reminder subscription in real headless Chromium at 390x844 (issue 15, "Must show").

Headless Chromium has no push service to subscribe with (its ``pushManager.subscribe`` needs
Google's, which this machine cannot reach), so ``PushManager.prototype.subscribe`` and
``getSubscription`` are replaced before the page loads by a stub that returns a fixed
subscription, as a browser would, and records the options the page passed. Everything else is
real: the service worker registers, push.js posts the subscription with the CSRF token, the
server stores it for the signed-in patient, and the page knows it is on after a reload.
Delivery to a push endpoint is tested without a browser (tests/test_push.py); the second test
hands the service worker the server's payload through Chromium's DevTools protocol
(``ServiceWorker.deliverPushMessage``), as a push service would, and reads what it showed.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.test import override_settings
from playwright.sync_api import Page, expect
from py_vapid import Vapid

from tests.e2e.a11y import blocking_violations
from tests.e2e.test_portal_browser import sign_in
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory
from tests.test_portal_support import course, due_now, give_login, local_today
from tracker.models import PlannedDose, PushSubscription
from tracker.services import push

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ENDPOINT = "https://fcm.googleapis.com/fcm/send/e2e"  # a real push service's host: others are refused
P256DH = b64url(b"\x04" + os.urandom(64))
AUTH = b64url(os.urandom(16))
STUB = f"""
(() => {{
  const KEPT = "e2e.fakePushSubscription";  // survives a reload, as a browser's subscription does
  const fake = {{
    endpoint: "{ENDPOINT}",
    toJSON() {{
      return {{endpoint: this.endpoint, expirationTime: null, keys: {{p256dh: "{P256DH}", auth: "{AUTH}"}}}};
    }},
    unsubscribe() {{ sessionStorage.removeItem(KEPT); return Promise.resolve(true); }},
  }};
  PushManager.prototype.subscribe = function (options) {{
    window.__pushKey = Array.from(new Uint8Array(options.applicationServerKey));
    window.__userVisibleOnly = options.userVisibleOnly;
    sessionStorage.setItem(KEPT, "1");
    return Promise.resolve(fake);
  }};
  PushManager.prototype.getSubscription = function () {{
    return Promise.resolve(sessionStorage.getItem(KEPT) ? fake : null);
  }};
}})();
"""


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 390, "height": 844}, "has_touch": True, "locale": "en-GB"}


@pytest.fixture
def people():
    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(clinic=clinic, responsible_clinician=clinician, given_name="Alex")
    give_login(patient, "alex")
    return patient, clinician


@pytest.fixture
def vapid_public_key():
    key = Vapid()
    key.generate_keys()
    public = key.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    private = b64url(key.private_key.private_numbers().private_value.to_bytes(32, "big"))
    with override_settings(
        VAPID_PUBLIC_KEY=b64url(public), VAPID_PRIVATE_KEY=private, VAPID_SUBJECT="mailto:it@clinic.example"
    ):
        yield public


def test_a_patient_turns_notifications_on_and_off_on_this_device(
    page: Page, live_server, people, vapid_public_key, shots: Path
) -> None:
    patient, clinician = people
    course(patient, clinician, times=("08:00",))
    page.context.grant_permissions(["notifications"])
    page.add_init_script(STUB)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/reminders/")

    turn_on = page.get_by_role("button", name="Turn on notifications on this device")
    expect(turn_on).to_be_visible()
    expect(page.get_by_role("button", name="Turn off on this device")).to_be_hidden()
    assert blocking_violations(page) == []  # axe-core, serious and critical, as every portal page
    page.screenshot(path=shots / "reminders-push-off.png", full_page=True)

    turn_on.click()
    expect(page.locator("#push-status")).to_have_text("Notifications are on on this device.")
    assert bytes(page.evaluate("window.__pushKey")) == vapid_public_key  # the clinic's key, as bytes
    assert page.evaluate("window.__userVisibleOnly") is True
    stored = PushSubscription.objects.get()
    assert (stored.patient, stored.endpoint, stored.p256dh, stored.auth) == (patient, ENDPOINT, P256DH, AUTH)
    assert "Chrome" in stored.user_agent and stored.ended_at is None

    page.reload()  # the page tells from the digest that this browser's subscription is the patient's
    turn_off = page.get_by_role("button", name="Turn off on this device")
    expect(turn_off).to_be_visible()
    expect(page.locator("#push").get_by_text("Notifications are on for 1 device.")).to_be_visible()
    page.screenshot(path=shots / "reminders-push-on.png", full_page=True)
    assert blocking_violations(page) == []

    turn_off.click()
    expect(page.locator("#push-status")).to_have_text("Notifications are off on this device.")
    expect(page.get_by_role("button", name="Turn on notifications on this device")).to_be_visible()
    stored.refresh_from_db()
    assert stored.ended_at is not None and stored.ended_reason == "turned off by the patient"
    assert PushSubscription.objects.count() == 1  # ended, not deleted


def test_the_service_worker_shows_the_reminder_and_its_link_opens_the_dose_with_taken(
    page: Page, live_server, people, shots: Path
) -> None:
    patient, clinician = people
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.filter(prescription=rx, local_date=local_today(patient)).first()
    payload = push.reminder_payload(
        due_local=dose.due_at.astimezone(patient.zone), zone=patient.timezone, url=f"/#dose-{dose.pk}", tag="t"
    )  # what services.push encrypts and sends
    page.context.grant_permissions(["notifications"])
    sign_in(page, live_server.url)  # offline.js registers the service worker
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    devtools = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    devtools.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    devtools.send("ServiceWorker.enable")
    for _ in range(50):  # the registration arrives as an event after enable
        if any(not r["isDeleted"] for r in registrations):
            break
        page.wait_for_timeout(100)
    (registration,) = [r for r in registrations if not r["isDeleted"]]
    devtools.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": live_server.url, "registrationId": registration["registrationId"], "data": payload},
    )
    shown: list = []
    for _ in range(50):  # the worker shows it asynchronously
        shown = page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(list => list.map(n => ({title: n.title, body: n.body, url: n.data.url})))"
        )
        if shown:
            break
        page.wait_for_timeout(100)
    assert shown == [
        {"title": "Dose reminder", "body": json.loads(payload)["body"], "url": f"/#dose-{dose.pk}"}
    ]  # fmt: skip
    assert re.fullmatch(r"A dose is due at \d\d:\d\d \(Europe/London time\)\. Tap to log it\.", shown[0]["body"])

    page.goto(live_server.url + shown[0]["url"])  # where a tap on the notification goes
    card = page.locator(f"#dose-{dose.pk}")
    expect(card.get_by_role("button", name=re.compile(r"^Taken"))).to_be_visible()
    page.screenshot(path=shots / "notification-opens-the-dose.png", full_page=True)


def test_signing_out_on_a_shared_phone_stops_this_browsers_notifications(page: Page, live_server, people) -> None:
    """sw.js ends the browser's push subscription as the sign-out goes through it, so the next
    person holding the phone does not get the last patient's reminders. Headless Chromium has
    no push service, so the worker's PushManager is stubbed to count the unsubscribe."""
    sign_in(page, live_server.url)  # offline.js registers the service worker
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now the worker controls the page, so the sign-out POST goes through it
    assert page.evaluate("!!navigator.serviceWorker.controller")
    (worker,) = [w for w in page.context.service_workers if w.url.endswith("/sw.js")]
    worker.evaluate(
        """() => {
          self.__unsubscribed = 0;
          PushManager.prototype.getSubscription = () => Promise.resolve({
            unsubscribe() { self.__unsubscribed += 1; return Promise.resolve(true); },
          });
        }"""
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
    for _ in range(30):  # waitUntil finishes on its own time
        if worker.evaluate("self.__unsubscribed") == 1:
            break
        page.wait_for_timeout(100)
    assert worker.evaluate("self.__unsubscribed") == 1
