"""Dose reminders by Web Push (issue 15), delivered to a real local push endpoint.

The test plays the browser: it makes the subscription's P-256 key pair and auth secret, as
``PushManager.subscribe`` does, subscribes through the portal, and runs a tiny HTTP server as
the push service. What the server receives is the real encrypted POST: the test decrypts it
with http_ece (aes128gcm, RFC 8291) and checks the VAPID JWT (RFC 8292) against the public key.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from py_vapid import Vapid

from tests.dosing import at
from tests.factories import PatientFactory, UserFactory
from tests.test_portal_support import give_login, signed_in
from tests.test_reminders import dose_on, remind_daily
from tracker.models import DoseReminder, PushSubscription
from tracker.rules import reminders
from tracker.services import push
from tracker.services.doses import record_dose

pytestmark = pytest.mark.django_db
SUBJECT = "mailto:reminders@clinic.example"
POINT = serialization.PublicFormat.UncompressedPoint
X962 = serialization.Encoding.X962
FCM = "https://fcm.googleapis.com/fcm/send/"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService(ThreadingHTTPServer):
    """A push service on 127.0.0.1: records each POST and answers ``self.answer``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.answer = 201
        self.location = ""  # sent with the answer when set: a redirect

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.server.answer)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def push_service():
    server = PushService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with override_settings(WEB_PUSH_ALLOW_LOOPBACK=True):  # as DEBUG turns it on in development
        yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def vapid():
    """The clinic's VAPID key pair, in the settings as the environment would give them."""
    key = Vapid()
    key.generate_keys()
    private = b64url(key.private_key.private_numbers().private_value.to_bytes(32, "big"))
    public = b64url(key.public_key.public_bytes(X962, POINT))
    with override_settings(VAPID_PUBLIC_KEY=public, VAPID_PRIVATE_KEY=private, VAPID_SUBJECT=SUBJECT):
        yield key


class Browser:
    """What PushManager.subscribe makes: a P-256 key pair and a 16-byte auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> dict:
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(self.key.public_key().public_bytes(X962, POINT)), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def subscribe(client, browser: Browser):
    return client.post(
        reverse("portal:push_subscribe"),
        json.dumps(browser.subscription()),
        content_type="application/json",
        HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) Chrome/131",
    )


@pytest.fixture
def reminded(patient, clinician):
    return remind_daily(patient, clinician)


def push_only(patient) -> None:
    """No email address anywhere: the reminder can only go by push."""
    patient.email = ""
    patient.save(update_fields=["email"])
    patient.user.email = ""
    patient.user.save(update_fields=["email"])


@pytest.fixture
def portal(client, patient):
    return signed_in(client, give_login(patient, "pat"))


def check_vapid_jwt(authorization: str, vapid_key: Vapid, audience: str) -> dict:
    """RFC 8292: 'vapid t=<JWT>, k=<public key>'; the JWT is ES256 over the header and claims."""
    token = re.search(r"t=([^,\s]+)", authorization).group(1)
    k = re.search(r"k=([^,\s]+)", authorization).group(1)
    assert unb64url(k) == vapid_key.public_key.public_bytes(X962, POINT)
    head, claims, signature = token.split(".")
    assert json.loads(unb64url(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    # Raises InvalidSignature unless the clinic's private key signed exactly these bytes.
    vapid_key.public_key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    payload = json.loads(unb64url(claims))
    assert payload["aud"] == audience and payload["sub"] == SUBJECT
    assert time.time() < payload["exp"] <= time.time() + 24 * 3600
    return payload


def test_a_due_reminder_reaches_the_push_endpoint_encrypted_signed_and_without_the_medicine(
    portal, patient, reminded, push_service, vapid
):
    browser = Browser(f"{push_service.origin}/wpush/v2/abc")
    assert subscribe(portal, browser).status_code == 201
    dose = dose_on(reminded, "2026-03-27")  # 07:10 GMT, reminded at 06:55

    reminders.sweep(now=at("2026-03-27T06:55"))
    reminders.sweep(now=at("2026-03-27T06:56"))  # again: still once

    ((path, headers, body),) = push_service.received
    assert path == "/wpush/v2/abc"
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["urgency"] == "high"
    assert int(headers["ttl"]) == int((dose.deadline - at("2026-03-27T06:55")).total_seconds())
    check_vapid_jwt(headers["authorization"], vapid, audience=push_service.origin)
    assert browser.decrypt(body) == {
        "title": "Dose reminder",
        "body": "A dose is due at 07:10 (Europe/London time). Tap to log it.",
        "url": f"/#dose-{dose.pk}",
        "tag": f"dose-{dose.pk}",
    }
    assert "ertraline" not in body.decode("latin-1") and "ertraline" not in json.dumps(browser.decrypt(body))
    sent = DoseReminder.objects.get()
    assert (sent.status, sent.channels) == (DoseReminder.Status.SENT, "email+push")
    assert len(mail.outbox) == 1
    assert PushSubscription.objects.get().last_success_at == at("2026-03-27T06:55")


def test_a_410_ends_the_subscription_and_the_email_still_goes(portal, patient, reminded, push_service, vapid):
    assert subscribe(portal, Browser(f"{push_service.origin}/gone")).status_code == 201
    push_service.answer = 410

    reminders.sweep(now=at("2026-03-27T06:55"))

    assert len(push_service.received) == 1 and len(mail.outbox) == 1
    assert DoseReminder.objects.get().channels == "email"
    ended = PushSubscription.objects.get()  # kept, not deleted
    assert ended.ended_at == at("2026-03-27T06:55") and ended.ended_reason == "push service answered 410"
    reminders.sweep(now=at("2026-03-28T06:55"))  # the next day's dose: no push to an ended subscription
    assert len(push_service.received) == 1 and len(mail.outbox) == 2


def test_a_push_only_reminder_stays_owed_through_a_5xx_and_goes_once_when_the_service_is_back(
    portal, patient, reminded, push_service, vapid
):
    push_only(patient)
    browser = Browser(f"{push_service.origin}/flaky")
    subscribe(portal, browser)
    push_service.answer = 503

    reminders.sweep(now=at("2026-03-27T06:55"))
    owed = DoseReminder.objects.get()
    assert owed.status == DoseReminder.Status.PENDING and owed.sent_at is None
    assert PushSubscription.objects.get().ended_at is None  # a 5xx may pass: the subscription stays

    push_service.answer = 201
    reminders.sweep(now=at("2026-03-27T06:57"))
    reminders.sweep(now=at("2026-03-27T06:58"))
    assert len(push_service.received) == 2  # the failed try, then one delivery
    assert browser.decrypt(push_service.received[-1][2])["url"] == f"/#dose-{dose_on(reminded, '2026-03-27').pk}"
    owed.refresh_from_db()
    assert (owed.status, owed.channels) == (DoseReminder.Status.SENT, "push")
    assert mail.outbox == []


def test_a_logged_dose_gets_no_push(portal, patient, reminded, push_service, vapid):
    subscribe(portal, Browser(f"{push_service.origin}/x"))
    dose = dose_on(reminded, "2026-03-27")
    reminders.sweep(now=at("2026-03-27T06:40"))  # nothing due yet
    record_dose(
        prescription=reminded, planned_dose=dose, occurred_at=at("2026-03-27T06:50"), reporter="patient",
        now=at("2026-03-27T06:50"),
    )  # fmt: skip
    reminders.sweep(now=at("2026-03-27T06:55"))
    assert push_service.received == [] and mail.outbox == []


def test_a_reminder_queued_before_the_dose_was_logged_is_not_pushed(portal, patient, reminded, push_service, vapid):
    push_only(patient)
    subscribe(portal, Browser(f"{push_service.origin}/y"))
    push_service.answer = 500
    reminders.sweep(now=at("2026-03-27T06:55"))  # queued, push failed: owed
    dose = dose_on(reminded, "2026-03-27")
    record_dose(
        prescription=reminded, planned_dose=dose, occurred_at=at("2026-03-27T06:56"), reporter="patient",
        now=at("2026-03-27T06:56"),
    )  # fmt: skip
    push_service.answer = 201
    reminders.sweep(now=at("2026-03-27T06:57"))
    assert len(push_service.received) == 1  # only the failed try
    assert DoseReminder.objects.get().status == DoseReminder.Status.LOGGED


# --- The portal's endpoints ----------------------------------------------------------------


def test_the_subscription_is_stored_for_the_signed_in_patient_and_turning_off_ends_it(portal, patient, vapid):
    browser = Browser("https://fcm.googleapis.com/fcm/send/abc")
    answer = subscribe(portal, browser)
    assert answer.status_code == 201 and answer.json()["on"] is True
    stored = PushSubscription.objects.get()
    assert stored.patient == patient and stored.endpoint == browser.endpoint
    assert stored.p256dh == browser.subscription()["keys"]["p256dh"] and "Android" in stored.user_agent
    assert subscribe(portal, browser).status_code == 201  # the same browser again: one row
    assert PushSubscription.objects.count() == 1

    page = portal.get(reverse("portal:reminders")).content.decode()
    assert f'data-key="{push.config().public_key}"' in page
    assert push.endpoint_digest(browser.endpoint) in page and browser.endpoint not in page

    off = portal.post(
        reverse("portal:push_unsubscribe"), {"endpoint": browser.endpoint}, content_type="application/json"
    )
    assert off.status_code == 200 and off.json()["on"] is False
    stored.refresh_from_db()  # ended, never deleted
    assert stored.ended_at is not None and stored.ended_reason == push.ENDED_BY_PATIENT


def test_nobody_else_can_store_or_end_a_patients_subscription(client, patient, clinic, vapid):
    browser = Browser("https://updates.push.services.mozilla.com/wpush/v2/xyz")
    answer = subscribe(client, browser)  # not signed in
    assert answer.status_code == 302 and "/login" in answer["Location"]
    signed_in(client, UserFactory(username="staff-not-patient"))
    assert subscribe(client, browser).status_code == 403
    assert not PushSubscription.objects.exists()

    signed_in(client, give_login(patient, "pat"))
    subscribe(client, browser)
    other = PatientFactory(clinic=clinic)
    signed_in(client, give_login(other, "other"))
    client.post(reverse("portal:push_unsubscribe"), {"endpoint": browser.endpoint}, content_type="application/json")
    assert PushSubscription.objects.get().ended_at is None  # not theirs to end


def test_a_second_patient_turning_on_in_the_same_browser_ends_the_firsts(client, patient, clinic, vapid):
    browser = Browser("https://fcm.googleapis.com/fcm/send/shared-phone")
    subscribe(signed_in(client, give_login(patient, "pat")), browser)
    other = PatientFactory(clinic=clinic)
    assert subscribe(signed_in(client, give_login(other, "other")), browser).status_code == 201
    first, second = PushSubscription.objects.order_by("pk")
    assert first.patient == patient and first.ended_reason == push.ENDED_BY_OTHER_PATIENT
    assert second.patient == other and second.ended_at is None


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("not json", "body", "not JSON"),
        ("[]", "body", "not a subscription"),
        ({"endpoint": "http://198.51.100.7/push", "keys": {"p256dh": "x", "auth": "y"}}, "endpoint", "not https"),
        ({"endpoint": FCM + "1", "keys": {"p256dh": "AAAA", "auth": "y"}}, "p256dh", "P-256"),
        ({"endpoint": FCM + "1", "keys": {"p256dh": None}}, "p256dh", "did not send"),
        ({"keys": {}}, "endpoint", "did not send"),
        (
            '{"endpoint": "https://push.example/\\ud800", "keys": {"p256dh": "x", "auth": "y"}}',
            "endpoint",
            "characters a URL cannot have",
        ),
        (
            '{"endpoint": "https://push.example/\\u0000", "keys": {"p256dh": "x", "auth": "y"}}',
            "endpoint",
            "characters a URL cannot have",
        ),
        ("[" * 100_000, "body", "not JSON"),
    ],
)
def test_a_subscription_that_cannot_work_is_refused_by_name(portal, vapid, body, field, words):
    data = body if isinstance(body, str) else json.dumps(body)
    answer = portal.post(reverse("portal:push_subscribe"), data, content_type="application/json")
    assert answer.status_code == 400
    assert words in " ".join(answer.json()["errors"][field])
    assert not PushSubscription.objects.exists()
    if field != "p256dh" and words != "not https":  # turning off reads the same body the same way
        off = portal.post(reverse("portal:push_unsubscribe"), data, content_type="application/json")
        assert off.status_code == 400 and field in off.json()["errors"]


NOT_OURS = "This browser's push service is not one we send to."


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://169.254.169.254/latest/meta-data",  # the cloud's metadata service
        "https://10.0.0.5/push",  # inside the clinic's network
        "https://127.0.0.1/push",  # this machine, with WEB_PUSH_ALLOW_LOOPBACK off
        "https://localhost:8000/push",
        "https://push.example/1",  # any other https host
        "https://evilfcm.googleapis.com/fcm/send/1",  # not a whole label
        "https://fcm.googleapis.com.evil.example/fcm/send/1",  # the allowed name as a prefix
        "https://web.push.apple.com.evil.example/1",
        "https://fcm.googleapis.com:8443/fcm/send/1",  # an allowed host on another port
    ],
)
def test_a_push_address_outside_the_push_services_is_refused_so_the_server_posts_nowhere_else(portal, vapid, endpoint):
    answer = subscribe(portal, Browser(endpoint))
    assert answer.status_code == 400 and answer.json()["errors"]["endpoint"] == [NOT_OURS]
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        FCM + "abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGx",
        "https://wns2-db5p.notify.windows.com/w/?token=abc",
        "https://FCM.googleapis.com:443/fcm/send/abc",  # names are case-blind; 443 is https's port
    ],
)
def test_the_real_push_services_are_accepted(portal, vapid, endpoint):
    assert subscribe(portal, Browser(endpoint)).status_code == 201


@pytest.mark.parametrize("url", ["subscribe", "unsubscribe"])
def test_a_malformed_push_address_is_refused_by_name_not_a_500(portal, vapid, url):
    body = {"endpoint": "https://[abc/x", "keys": {"p256dh": "x", "auth": "y"}}
    answer = portal.post(reverse(f"portal:push_{url}"), body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["errors"]["endpoint"] == ["The browser gave a push address that is not a URL."]


def test_a_stored_subscription_outside_the_push_services_is_ended_not_posted_to(
    portal, patient, reminded, push_service, vapid
):
    assert subscribe(portal, Browser(f"{push_service.origin}/old")).status_code == 201
    with override_settings(WEB_PUSH_ALLOW_LOOPBACK=False):  # stored while it was allowed
        reminders.sweep(now=at("2026-03-27T06:55"))
    assert push_service.received == []
    assert PushSubscription.objects.get().ended_reason == "push service not one we send to"
    assert DoseReminder.objects.get().channels == "email"


def test_a_redirect_from_the_push_service_is_not_followed(portal, patient, reminded, push_service, vapid):
    push_only(patient)
    elsewhere = PushService()  # where the redirect points: must receive nothing
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        subscribe(portal, Browser(f"{push_service.origin}/moved"))
        push_service.answer, push_service.location = 307, f"{elsewhere.origin}/stolen"
        reminders.sweep(now=at("2026-03-27T06:55"))
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert len(push_service.received) == 1 and elsewhere.received == []
    assert DoseReminder.objects.get().status == DoseReminder.Status.PENDING  # a failure: tried again next run


def test_without_vapid_keys_the_page_says_so_and_reminders_go_by_email_only(portal, patient, reminded):
    page = portal.get(reverse("portal:reminders")).content.decode()
    assert "not available: your clinic has not set them up" in page and "push.js" not in page
    answer = subscribe(portal, Browser("https://fcm.googleapis.com/fcm/send/abc"))
    assert answer.status_code == 400 and "not set up" in answer.content.decode()
    reminders.sweep(now=at("2026-03-27T06:55"))
    assert len(mail.outbox) == 1 and DoseReminder.objects.get().channels == "email"


def test_turning_on_needs_the_csrf_token_as_push_js_sends_it(patient, vapid):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    signed_in(browser, give_login(patient, "pat"))
    body = json.dumps(Browser("https://fcm.googleapis.com/fcm/send/csrf").subscription())
    url = reverse("portal:push_subscribe")
    assert browser.post(url, body, content_type="application/json").status_code == 403
    assert not PushSubscription.objects.exists()
    page = browser.get(reverse("portal:reminders")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # what push.js reads
    assert browser.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token).status_code == 201
    assert PushSubscription.objects.get().patient == patient


def test_a_spanish_patients_notification_is_in_spanish(portal, patient, reminded, push_service, vapid):
    patient.language = "es"
    patient.save(update_fields=["language"])
    browser = Browser(f"{push_service.origin}/es")
    subscribe(portal, browser)
    reminders.sweep(now=at("2026-03-27T06:55"))
    message = browser.decrypt(push_service.received[0][2])
    assert message["title"] == "Recordatorio de dosis"
    assert message["body"] == "Le toca una dosis a las 07:10 (hora de Europe/London). Toque para registrarla."


def test_the_page_lists_the_patients_devices_and_one_can_be_turned_off_there(client, patient, clinic, vapid):
    portal = signed_in(client, give_login(patient, "pat"))
    subscribe(portal, Browser("https://fcm.googleapis.com/fcm/send/phone"))  # "Android ... Chrome/131"
    page = portal.get(reverse("portal:reminders")).content.decode()
    assert "Chrome on Android, since" in page and "Notifications are on for 1 device." in page
    phone = PushSubscription.objects.get()

    other = PatientFactory(clinic=clinic)
    signed_in(client, give_login(other, "other"))
    assert client.post(reverse("portal:push_end_device", args=[phone.pk])).status_code == 302
    phone.refresh_from_db()
    assert phone.ended_at is None  # not theirs: nothing changes

    signed_in(client, patient.user)
    ended = client.post(reverse("portal:push_end_device", args=[phone.pk]), follow=True)
    assert "Saved: notifications are off on that device." in ended.content.decode()
    phone.refresh_from_db()
    assert phone.ended_at is not None and phone.ended_reason == push.ENDED_BY_PATIENT


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
         "Chrome on Android"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Safari/604.1",
         "Safari on iPhone"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0",
         "Edge on Windows"),
        ("", "A browser"),
    ],
)  # fmt: skip
def test_device_labels(agent, label):
    assert push.device_label(agent) == label


def test_the_tasks_soft_time_limit_during_a_push_stops_the_run_not_counted_as_the_service_failing(monkeypatch, vapid):
    from celery.exceptions import SoftTimeLimitExceeded

    def out_of_time(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(push, "webpush", out_of_time)
    subscription = PushSubscription(pk=1, endpoint=FCM + "abc", p256dh="x", auth="y")
    with pytest.raises(SoftTimeLimitExceeded):
        push.deliver(subscription, "{}", ttl=60, push=push.config())
