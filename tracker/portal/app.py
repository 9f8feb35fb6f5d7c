"""The portal as an installable app: its web app manifest and its service worker, from this origin.

No CDN and no inline script (the Content-Security-Policy allows scripts from 'self' only):
the worker is the static file portal/sw.js, served here at the site's root.
"""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods

APP_NAME = gettext_lazy("My treatment")
THEME_COLOUR = "#005ea5"  # portal.css --brand


@require_http_methods(["GET", "HEAD"])
@cache_control(max_age=3600)
def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest, from this origin: the portal opens from the home screen like an app."""
    icons = [
        {"src": static(f"portal/icon-{size}.png"), "sizes": f"{size}x{size}", "type": "image/png", "purpose": "any"}
        for size in (192, 512)
    ]
    body = {
        "name": str(APP_NAME),
        "short_name": str(APP_NAME),
        "lang": translation.get_language(),
        "description": _("Log your doses and answer your questionnaires for your care team."),
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME_COLOUR,
        "icons": icons,
    }
    return JsonResponse(body, content_type="application/manifest+json")


@require_http_methods(["GET", "HEAD"])
@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> HttpResponse:
    """static/portal/sw.js served at /sw.js, so its scope is the whole portal.

    A worker controls only the paths under its own URL; from /static/ it could not see the
    portal's pages. The browser checks for a new version on each visit (no-cache).
    """
    path = finders.find("portal/sw.js")
    if path is None:  # pragma: no cover - the file ships with the app
        raise Http404("No service worker.")
    with open(path, encoding="utf-8") as source:
        response = HttpResponse(source.read(), content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    return response
