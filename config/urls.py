"""URL map: the clinician admin, the REST API with its schema and docs, the patient portal, and a health check."""

import logging
from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from kombu import Connection
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.views import APIView

from tracker.portal import app as portal_app

logger = logging.getLogger(__name__)
# A load balancer probes every few seconds: a broker that does not answer within this is "failed".
BROKER_TIMEOUT_SECONDS = 1


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        logger.warning("health: the database did not answer", exc_info=True)
        return False


def broker_answers() -> bool:
    """One connection attempt and one retry, each cut off after BROKER_TIMEOUT_SECONDS.

    The embedded filesystem broker (the default without REDIS_URL) has no server: it answers when
    its queue folder exists.
    """
    url = settings.CELERY_BROKER_URL
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if url.startswith("filesystem://"):
        return Path(options.get("data_folder_in", "")).is_dir()
    timeouts = {"socket_connect_timeout": BROKER_TIMEOUT_SECONDS, "socket_timeout": BROKER_TIMEOUT_SECONDS}
    transport = {**options, **timeouts}
    try:
        with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=transport) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
        return True
    except Exception:  # any transport's error means the same to a probe: not answering
        logger.warning("health: the broker did not answer", exc_info=True)
        return False


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker both answer, else 503 naming the one that failed.

    For load-balancer probes: plain HTTP is allowed (SECURE_REDIRECT_EXEMPT); no detail of the
    error leaves the server (it is logged).
    """
    checks = {
        "database": "ok" if database_answers() else "failed",
        "broker": "ok" if broker_answers() else "failed",
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "failed", **checks}, status=200 if healthy else 503)


class SchemaPermission(BasePermission):
    """Staff only, unless TRACKER_PUBLIC_API_DOCS is on; read per request so the setting can change in tests."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return settings.TRACKER_PUBLIC_API_DOCS or IsAdminUser().has_permission(request, view)


swagger_ui = SpectacularSwaggerSplitView.as_view(url_name="api-schema")
staff_swagger_ui = staff_member_required(swagger_ui)


def api_docs(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Swagger UI: a signed-out browser goes to the admin's sign-in, unless the docs are public."""
    view = swagger_ui if settings.TRACKER_PUBLIC_API_DOCS else staff_swagger_ui
    return view(request, *args, **kwargs)


# Refusals in the admin's style with their reason; the portal keeps templates/403.html.
handler403 = "tracker.admin.errors.permission_denied"

urlpatterns = [
    # The second sign-in step for staff (tracker/accounts), before the admin's own URLs.
    path("admin/mfa/", include("tracker.accounts.urls")),
    path("admin/", admin.site.urls),
    # The schema and its docs are for staff (by session or token) unless TRACKER_PUBLIC_API_DOCS is
    # on. The split view serves Swagger UI's set-up script as a file, so the Content-Security-Policy
    # needs no inline script.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[SchemaPermission]), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("api/", include("tracker.api.urls")),
    path("health/", health, name="health"),
    # The portal as an installable app: the worker at the root so its scope covers every page.
    path("sw.js", portal_app.service_worker, name="service-worker"),
    path("manifest.webmanifest", portal_app.manifest, name="manifest"),
    path("accounts/", include("tracker.portal.auth_urls")),
    path("", include("tracker.portal.urls")),
]
