"""URL map: the clinician admin, the REST API with its schema and docs, the patient portal, and a health check."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAdminUser

from tracker.portal import app as portal_app


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# Refusals in the admin's style with their reason; the portal keeps templates/403.html.
handler403 = "tracker.admin.errors.permission_denied"

urlpatterns = [
    # The second sign-in step for staff (tracker/accounts), before the admin's own URLs.
    path("admin/mfa/", include("tracker.accounts.urls")),
    path("admin/", admin.site.urls),
    # The schema and its docs are for staff (by session or token); the docs page sends a signed-out
    # browser to the admin's sign-in. The split view serves Swagger UI's set-up script as a file,
    # so the Content-Security-Policy needs no inline script.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[IsAdminUser]), name="api-schema"),
    path(
        "api/docs/",
        staff_member_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("api/", include("tracker.api.urls")),
    path("health/", health, name="health"),
    # The portal as an installable app: the worker at the root so its scope covers every page.
    path("sw.js", portal_app.service_worker, name="service-worker"),
    path("manifest.webmanifest", portal_app.manifest, name="manifest"),
    path("accounts/", include("tracker.portal.auth_urls")),
    path("", include("tracker.portal.urls")),
]
