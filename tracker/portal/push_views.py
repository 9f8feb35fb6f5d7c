"""The portal's Web Push endpoints: this browser's subscription, turned on and off, and the
patient's other devices turned off from the list (issue 15).

Called by static/portal/push.js on the reminders page with JSON and the CSRF token; the
subscription is always stored for the signed-in patient (patient_required), whatever the
body says. Answers JSON: 200/201 with what is now true, or 400 naming the field and why.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from tracker.models import Patient
from tracker.portal.views import patient_required
from tracker.services import push
from tracker.services.errors import ServiceError


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object posted, or a ServiceError naming what is wrong with it."""
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        raise ServiceError({"body": gettext("The browser sent something that is not JSON.")}) from None
    if not isinstance(data, dict):
        raise ServiceError({"body": gettext("The browser sent something that is not a subscription.")})
    return data


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ServiceError({field: gettext("The browser did not send this.")})
    return value


def _refusal(error: ServiceError) -> JsonResponse:
    errors = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    return JsonResponse({"on": False, "errors": errors}, status=400)


@patient_required
@require_POST
def push_subscribe(request: HttpRequest, patient: Patient) -> JsonResponse:
    """Turn notifications on for this browser: store ``PushManager.subscribe``'s answer."""
    try:
        data = _body(request)
        keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
        push.subscribe(
            patient=patient,
            endpoint=_text("endpoint", data.get("endpoint")),
            p256dh=_text("p256dh", keys.get("p256dh")),
            auth=_text("auth", keys.get("auth")),
            user_agent=request.headers.get("User-Agent", ""),
            now=timezone.now(),
        )
    except ServiceError as error:
        return _refusal(error)
    return JsonResponse({"on": True, "message": gettext("Notifications are on on this device.")}, status=201)


@patient_required
@require_POST
def push_unsubscribe(request: HttpRequest, patient: Patient) -> JsonResponse:
    """Turn notifications off for this browser: the subscription is ended, never deleted."""
    try:
        data = _body(request)
        push.unsubscribe(patient=patient, endpoint=_text("endpoint", data.get("endpoint")), now=timezone.now())
    except ServiceError as error:
        return _refusal(error)
    return JsonResponse({"on": False, "message": gettext("Notifications are off on this device.")})


@patient_required
@require_POST
def push_end_device(request: HttpRequest, patient: Patient, subscription_id: int) -> HttpResponse:
    """The reminders page's list of devices: stop notifications on one (a lost phone), by a plain
    form, so it works from any browser; another patient's id changes nothing."""
    if push.end_device(patient=patient, subscription_id=subscription_id, now=timezone.now()):
        messages.success(request, gettext("Saved: notifications are off on that device."))
    return redirect("portal:reminders")
