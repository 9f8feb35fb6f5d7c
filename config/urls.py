"""URL map: the clinician admin, the REST API with its schema and docs, the patient portal, and a health check."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# Refusals in the admin's style with their reason; the portal keeps templates/403.html.
handler403 = "tracker.admin.errors.permission_denied"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("tracker.api.urls")),
    path("health/", health, name="health"),
    path("accounts/", include("tracker.portal.auth_urls")),
    path("", include("tracker.portal.urls")),
]
