"""The portal's language: the patient's own choice once signed in, the browser's before.

The clinician admin and the API stay in English (settings.LANGUAGE_CODE): only the
patient's pages are translated, so this middleware leaves every other path alone.
docs/i18n.md describes the whole machinery and how a clinic adds a language.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy, ngettext_lazy

from tracker.models import PortalLanguage
from tracker.services.languages import django_language  # noqa: F401 -- for the views; shared with reminders

# Paths that are not the patient's: the clinicians' workspace, the API, probes and files.
NOT_PORTAL = ("/admin/", "/api/", "/health/", "/static/")


def is_portal_path(path: str) -> bool:
    return not path.startswith(NOT_PORTAL)


def remember(response: HttpResponse, request: HttpRequest, language: str) -> None:
    """Keep the patient's language in the language cookie, so the sign-in page after
    signing out, or a password page, stays in it too (no query needed there)."""
    if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )


def _waiting(count: int) -> str:
    return ngettext_lazy(
        "%(count)s dose waiting to send — it will be sent when you are back online.",
        "%(count)s doses waiting to send — they will be sent when you are back online.",
        count,
    )


# What static/portal/offline.js says, in the page's language. Embedded in the page as JSON
# (base.html, json_script: data, not a script, so the CSP allows it) rather than fetched, so a
# page opened with no connection still has its words. "%(name)s" is filled in by the script;
# "waiting_many" is the plural form for a count of 2 or more (enough for English and Spanish).
OFFLINE_STRINGS = {
    "waiting_one": _waiting(1),
    "waiting_many": _waiting(2),
    "taken_waiting": gettext_lazy("Taken at %(time)s — waiting to send."),
    "sign_in_again": gettext_lazy("Please sign in again to send the waiting dose; it is kept on this phone."),
    "not_sent_yet": gettext_lazy(
        "The waiting dose could not be sent yet; it is kept on this phone and will be tried again."
    ),
    "offline_post": gettext_lazy("You are offline, so this was not sent. Please try again when you are back online."),
}


def languages(request: HttpRequest) -> dict:
    """Template context for portal pages: the switcher's languages (PortalLanguage) and offline.js's words."""
    if not is_portal_path(request.path_info):
        return {}
    return {"portal_languages": PortalLanguage.choices, "offline_strings": OFFLINE_STRINGS}


class PortalLanguageMiddleware:
    """Portal pages in the language the request asks for: the language cookie, else Accept-Language.

    A signed-in patient's own ``Patient.language`` is applied by the portal's
    ``patient_required`` (it has the patient row already, so no extra query here); this
    covers the pages before sign-in and the password pages. The language is active only
    while the response is made (``translation.override``), so it never leaks into the
    next request the thread serves, nor into the admin.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_portal_path(request.path_info):
            return self.get_response(request)
        language = translation.get_language_from_request(request)
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = self.get_response(request)
            response.headers.setdefault("Content-Language", translation.get_language())
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response
