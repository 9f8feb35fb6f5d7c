"""Multi-factor sign-in for clinic staff, built on django-otp (``otp_totp`` and ``otp_static``).

Staff sign in with their password at the admin's usual page. With
``TRACKER_REQUIRE_STAFF_MFA`` on, ``StaffMFAMiddleware`` then sends a staff user whose session
has no verified second factor (django-otp's ``OTPMiddleware`` sets ``user.is_verified()``) to
``/admin/mfa/``: the set-up page if they have no authenticator yet, else the code page. Nothing
else in the workspace (or the API over a session) answers them until they pass. The setting is
read per request, so tests can switch it.

The functions below write the devices; the views in ``tracker.accounts.views`` stay thin.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
API_REFUSAL = (
    "Your session has no second sign-in factor yet. Sign in to the clinicians' workspace with your code first."
)


def mfa_required() -> bool:
    return bool(getattr(settings, "TRACKER_REQUIRE_STAFF_MFA", False))


def needs_second_factor(user: AbstractBaseUser) -> bool:
    """A signed-in member of staff whose session has not been verified by a device."""
    return user.is_authenticated and user.is_staff and not user.is_verified()


def has_authenticator(user: AbstractBaseUser) -> bool:
    """Whether the user has finished setting up (a confirmed authenticator or recovery codes left)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or StaticToken.objects.filter(device__user=user, device__confirmed=True).exists()
    )


def pending_authenticator(user: AbstractBaseUser) -> TOTPDevice:
    """The unconfirmed authenticator being set up; the same secret if the page is reloaded."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def secret_text(device: TOTPDevice) -> str:
    """The secret as an authenticator app asks for it (base32), in groups of four for reading aloud."""
    secret = base64.b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// URL as an SVG QR code in a data: URI (the CSP allows data: images; no script, no CDN)."""
    out = io.BytesIO()
    qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def normalise_code(code: str) -> str:
    """What people type: spaces and dashes dropped, recovery codes in any case."""
    return "".join(ch for ch in code if ch not in " -\t").lower()


@transaction.atomic
def confirm_authenticator(user: AbstractBaseUser, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm ``device`` with a code from the app; returns the new recovery codes, or None if the code is wrong.

    Any earlier authenticator or recovery codes of the user are replaced, so a re-enrolment after a lost
    phone leaves only the new ones.
    """
    if not device.verify_token(normalise_code(code)):
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    StaticDevice.objects.filter(user=user).delete()
    recovery = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=recovery, token=token) for token in codes)
    return codes


@dataclass
class Verification:
    device: Device | None
    wait_message: str = ""


def verify_code(user: AbstractBaseUser, code: str) -> Verification:
    """Check a code against the user's authenticator, then their recovery codes (a recovery code is used up).

    Each device throttles wrong codes itself (django-otp doubles the wait after each failure); when every
    device is waiting, the answer says so.
    """
    token = normalise_code(code)
    waiting = []
    devices: list[Device] = [
        *TOTPDevice.objects.filter(user=user, confirmed=True),
        *StaticDevice.objects.filter(user=user, confirmed=True),
    ]
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if not allowed:
            waiting.append(info or {})
            continue
        with transaction.atomic():
            if device.verify_token(token):
                return Verification(device)
    if waiting and len(waiting) == len(devices):
        return Verification(None, "Too many wrong codes. Wait a minute, then type the code your app shows now.")
    return Verification(None)


def mark_verified(request: HttpRequest, device: Device) -> None:
    """Remember in the session that this user passed the second factor (django-otp's login)."""
    otp_login(request, device)


def _exempt_prefixes() -> tuple[str, ...]:
    static = settings.STATIC_URL if settings.STATIC_URL.startswith("/") else f"/{settings.STATIC_URL}"
    return (
        reverse("mfa:start"),
        reverse("admin:login"),
        reverse("admin:logout"),
        reverse("logout"),
        reverse("health"),
        static,
    )


class StaffMFAMiddleware:
    """Sends staff without a verified second factor to set it up or type a code (when required).

    After django-otp's ``OTPMiddleware``. Sign-in, sign-out, the MFA pages themselves, static
    files and the health check stay reachable. An API request on such a session is a 403 that says
    why; token-authenticated integrations are not sessions and are unaffected.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if mfa_required() and not request.path.startswith(_exempt_prefixes()) and needs_second_factor(request.user):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": API_REFUSAL}, status=403)
            return redirect(f"{reverse('mfa:start')}?next={quote(request.get_full_path())}")
        return self.get_response(request)
