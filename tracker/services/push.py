"""Web Push for dose reminders (issue 15): the patient's subscriptions, and one delivery.

Push is on only when the clinic has set ``VAPID_PUBLIC_KEY``, ``VAPID_PRIVATE_KEY`` and
``VAPID_SUBJECT`` (docs/reminders.md says how to make them); without them the portal says
notifications are not available and reminders go by email only.

What a notification says is what a phone's lock screen shows to anyone holding it, so it
says no more than the reminder email already does: that a dose is due and when, never the
medicine's name (the email leaves it out for the same reason). The name is on the page the
notification opens, after the patient has signed in.

A subscription is never deleted: turning it off, the push service answering 404/410 (the
browser dropped it), or another patient turning notifications on in the same browser ends
it with the time and the reason.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import functools
import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from tracker.models import Patient, PushSubscription
from tracker.services.errors import ServiceError

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10  # one slow push service must not hold up the sweep's batch for long
MIN_TTL_SECONDS = 60
GONE = (404, 410)  # RFC 8030 §7.3: the subscription no longer exists
ENDED_BY_PATIENT = "turned off by the patient"
ENDED_BY_OTHER_PATIENT = "another patient turned notifications on in this browser"


@dataclass(frozen=True)
class PushConfig:
    public_key: str
    private_key: str
    subject: str


def config() -> PushConfig | None:
    """The VAPID keys from settings, or None when push is off (any of the three unset)."""
    public = getattr(settings, "VAPID_PUBLIC_KEY", "")
    private = getattr(settings, "VAPID_PRIVATE_KEY", "")
    subject = getattr(settings, "VAPID_SUBJECT", "")
    if not (public and private and subject):
        return None
    return PushConfig(public_key=public, private_key=private, subject=subject)


@functools.lru_cache(maxsize=2)
def _vapid(private_key: str) -> Vapid:
    """The signing key from a PEM file's text (as ``vapid --gen`` writes it) or raw base64url;
    parsed once per key, not once per push."""
    if "BEGIN" in private_key:
        return Vapid.from_pem(private_key.encode())
    return Vapid.from_string(private_key)


def _b64url_bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _host_allowed(host: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """Whether ``host`` is one of the push services' hosts: an entry "*.push.apple.com" matches
    any name ending ".push.apple.com" (a whole label, so "evilpush.apple.com" does not), any
    other entry only itself."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_endpoint(endpoint: str) -> SplitResult:
    """The endpoint's parts, or the field's refusal: never a ValueError (a 500) from a bad URL."""
    if not all(33 <= ord(char) < 127 for char in endpoint):  # a URL from a browser is printable ASCII
        raise ServiceError({"endpoint": gettext("The browser gave a push address with characters a URL cannot have.")})
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 -- parsed lazily: "https://x:port/" raises here
    except ValueError:  # "https://[abc/x" (an unclosed IPv6 bracket), a port that is not a number
        raise ServiceError({"endpoint": gettext("The browser gave a push address that is not a URL.")}) from None
    return parts


def _check_endpoint(endpoint: str) -> None:
    """Only the real push services' hosts (``WEB_PUSH_ALLOWED_HOSTS``), by https on the default
    port, as every browser's push service gives; plain http or https to this machine only when
    ``WEB_PUSH_ALLOW_LOOPBACK`` is on (a local push service in development and in the tests).
    Anything else could make the server post to an address of the patient's choosing: a
    private or cloud-metadata address inside the clinic's network (SSRF)."""
    parts = _parse_endpoint(endpoint)
    host, port = parts.hostname or "", parts.port
    if getattr(settings, "WEB_PUSH_ALLOW_LOOPBACK", False) and parts.scheme in ("http", "https") and _is_loopback(host):
        return
    if parts.scheme != "https":
        not_https = gettext("The browser gave a push address that is not https; it was not saved.")
        raise ServiceError({"endpoint": not_https})
    if port not in (None, 443) or not _host_allowed(host, getattr(settings, "WEB_PUSH_ALLOWED_HOSTS", ())):
        raise ServiceError({"endpoint": gettext("This browser's push service is not one we send to.")})


def _check_key(field: str, value: str, length: int, what: str) -> None:
    try:
        raw = _b64url_bytes(value)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length or (field == "p256dh" and raw[:1] != b"\x04"):
        raise ServiceError({field: what})


def subscribe(
    *, patient: Patient, endpoint: str, p256dh: str, auth: str, user_agent: str, now: dt.datetime
) -> PushSubscription:
    """Store the browser's subscription for this patient (the signed-in one, never another).

    The same browser asking again refreshes its keys. A browser gives one subscription per
    site, so if it is still live for another patient (a shared phone), that one is ended:
    the phone now notifies the person who turned notifications on last.
    """
    if config() is None:
        raise ServiceError(gettext("Notifications are not set up for this clinic."))
    if len(endpoint) > PushSubscription._meta.get_field("endpoint").max_length:
        raise ServiceError({"endpoint": gettext("The browser gave a push address that is too long.")})
    _check_endpoint(endpoint)
    _check_key("p256dh", p256dh, 65, gettext("The browser's key is not a P-256 public key."))
    _check_key("auth", auth, 16, gettext("The browser's authentication secret is not 16 bytes."))
    with transaction.atomic():
        live = PushSubscription.objects.select_for_update().filter(endpoint=endpoint, ended_at__isnull=True).first()
        if live is not None and live.patient_id == patient.pk:
            live.p256dh, live.auth, live.user_agent = p256dh, auth, user_agent[:300]
            live.save(update_fields=["p256dh", "auth", "user_agent"])
            return live
        if live is not None:
            _end([live.pk], ENDED_BY_OTHER_PATIENT, now)
        try:
            with transaction.atomic():
                return PushSubscription.objects.create(
                    patient=patient,
                    endpoint=endpoint,
                    p256dh=p256dh,
                    auth=auth,
                    user_agent=user_agent[:300],
                    created_at=now,
                )
        except IntegrityError:  # the same browser, twice at once: the other request stored it
            raise ServiceError(gettext("Notifications were being turned on twice; please reload the page.")) from None


def unsubscribe(*, patient: Patient, endpoint: str, now: dt.datetime) -> bool:
    """End this patient's live subscription at ``endpoint``; False if they have none there.

    Only a well-formed URL is asked for, not an allowed host: nothing is sent, and a patient
    must be able to turn off a subscription stored before its host left the list."""
    _parse_endpoint(endpoint)
    own = PushSubscription.objects.filter(patient=patient, endpoint=endpoint, ended_at__isnull=True)
    return bool(own.update(ended_at=now, ended_reason=ENDED_BY_PATIENT))


def end_device(*, patient: Patient, subscription_id: int, now: dt.datetime) -> bool:
    """End one of this patient's live subscriptions from the list on the reminders page (a lost
    phone, an old browser); False if it is not theirs or already ended."""
    own = PushSubscription.objects.filter(pk=subscription_id, patient=patient, ended_at__isnull=True)
    return bool(own.update(ended_at=now, ended_reason=ENDED_BY_PATIENT))


# (what the User-Agent contains, what to call it), first match wins: Edge and Opera say Chrome too.
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"), ("Mac OS", "Mac"))


def device_label(user_agent: str) -> str:
    """'Chrome on Android' from a User-Agent, so the patient can tell their devices apart."""
    browser = next((name for mark, name in BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in SYSTEMS if mark in user_agent), "Linux" if "Linux" in user_agent else "")
    if browser and system:
        return gettext("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or gettext("A browser")


def _end(ids: list[int], reason: str, now: dt.datetime) -> None:
    PushSubscription.objects.filter(pk__in=ids, ended_at__isnull=True).update(ended_at=now, ended_reason=reason[:100])


def endpoint_digest(endpoint: str) -> str:
    """SHA-256 of an endpoint, hex: the page tells the browser which subscriptions are this
    patient's without writing the endpoints (capability URLs) into it."""
    return hashlib.sha256(endpoint.encode()).hexdigest()


def live_subscriptions(patient_id: int) -> list[PushSubscription]:
    return list(PushSubscription.objects.filter(patient_id=patient_id, ended_at__isnull=True).order_by("pk"))


def reminder_payload(*, due_local: dt.datetime, zone: str, url: str, tag: str) -> str:
    """The notification as small JSON for the service worker (static/portal/sw.js).

    No medicine name and nothing else clinical: the same words as the email's subject.
    """
    body = gettext("A dose is due at %(time)s (%(zone)s time). Tap to log it.") % {
        "time": f"{due_local:%H:%M}",
        "zone": zone,
    }
    return json.dumps({"title": gettext("Dose reminder"), "body": body, "url": url, "tag": tag}, separators=(",", ":"))


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 404/410: end the subscription
    FAILED = "failed"  # anything else: try again on the next run


@dataclass(frozen=True)
class Delivery:
    subscription_id: int
    outcome: Outcome
    reason: str = ""


class _NoRedirectSession(requests.Session):
    """A session that never follows a redirect: a push service answers 201, and a 3xx from an
    allowed host must not send the encrypted message (and our VAPID token) anywhere else.
    pywebpush posts with ``session.post``; a 3xx comes back as a failure (status > 202)."""

    def request(self, method: str | bytes, url: str | bytes, *args, **kwargs) -> requests.Response:  # type: ignore[override]
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def deliver(subscription: PushSubscription, payload: str, *, ttl: int, push: PushConfig) -> Delivery:
    """POST one encrypted message (aes128gcm, RFC 8291) with a VAPID JWT (RFC 8292).

    ``ttl`` tells the push service how long to keep it for a phone that is off: past the
    dose's deadline a reminder is pointless, so it is the time left until then.
    """
    try:  # checked again at each send: a subscription stored before a host left the list
        _check_endpoint(subscription.endpoint)
    except ServiceError:
        return Delivery(subscription.pk, Outcome.GONE, "push service not one we send to")
    info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
    try:
        with _NoRedirectSession() as session:
            webpush(
                info,
                data=payload,
                vapid_private_key=_vapid(push.private_key),
                vapid_claims={"sub": push.subject},
                ttl=max(MIN_TTL_SECONDS, ttl),
                timeout=TIMEOUT_SECONDS,
                headers={"Urgency": "high"},
                requests_session=session,
            )
    except WebPushException as error:
        status = error.response.status_code if error.response is not None else None
        if status in GONE:
            return Delivery(subscription.pk, Outcome.GONE, f"push service answered {status}")
        logger.warning("push to subscription %s failed (%s); the next run tries again", subscription.pk, status)
        return Delivery(subscription.pk, Outcome.FAILED, f"push service answered {status}")
    except SoftTimeLimitExceeded:
        raise  # the task's time is up: not a failure of this push service
    except Exception as error:  # connection refused, timeout, DNS: transient as far as we can tell
        logger.warning("push to subscription %s failed: %s", subscription.pk, type(error).__name__)
        return Delivery(subscription.pk, Outcome.FAILED, type(error).__name__)
    return Delivery(subscription.pk, Outcome.DELIVERED)


def record(deliveries: list[Delivery], now: dt.datetime) -> None:
    """After a send: end the subscriptions the push service says are gone, note the successes.

    Run outside the reminder's transaction, so a gone subscription stays ended even when the
    reminder itself rolls back to be tried again.
    """
    for delivery in deliveries:
        if delivery.outcome is Outcome.GONE:
            _end([delivery.subscription_id], delivery.reason, now)
    delivered = [d.subscription_id for d in deliveries if d.outcome is Outcome.DELIVERED]
    if delivered:
        PushSubscription.objects.filter(pk__in=delivered).update(last_success_at=now)
