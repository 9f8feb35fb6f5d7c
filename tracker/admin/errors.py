"""The 403 page: in the admin's own style with the reason and a way back; the portal keeps its own."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

GENERIC_REASON = "Your role does not include this. A clinic manager can tell you who can do it."


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler403``: admin URLs get the admin's page, the rest the site's own ``403.html``."""
    index = reverse("admin:index")
    if not request.path.startswith(index):
        return defaults.permission_denied(request, exception or PermissionDenied())
    # A PermissionDenied raised with a message says why, in words written for clinicians.
    reason = str(exception) if isinstance(exception, PermissionDenied) and exception.args else GENERIC_REASON
    back = back_link(request) or index
    context = {
        **admin.site.each_context(request),
        "title": "You cannot do this",
        "reason": reason,
        "back_url": back,
        "back_is_index": back == index,
    }
    return render(request, "admin/403.html", context, status=403)


def back_link(request: HttpRequest) -> str | None:
    """The page the user came from, if it is on this site and not the refused page itself."""
    referrer = request.META.get("HTTP_REFERER", "")
    if not referrer or not url_has_allowed_host_and_scheme(
        referrer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(referrer)
    if parts.path == request.path:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")
