"""Request checks that no view should have to repeat."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

NUL = "\x00"
# A whole number beyond a 64-bit key: no id or count of ours is that large.
_HUGE_INTEGER = re.compile(r"[+-]?0*\d{19,}")
_MAX_KEY = 2**63 - 1
# Free-text search terms may be long digit strings (they match text columns, not keys).
_FREE_TEXT = {"q", "term", "search"}


def _is_huge_integer(value: str) -> bool:
    return bool(_HUGE_INTEGER.fullmatch(value.strip())) and abs(int(value)) > _MAX_KEY


class QueryStringGuardMiddleware:
    """Answer 400 to a NUL character in the path or query string, or a huge integer in a filter.

    PostgreSQL refuses NUL in text, so a NUL that reached a query (an admin list filter, a
    search or autocomplete term, an API filter) raised a DataError, a 500; SQLite cannot bind
    an integer beyond 64 bits, so such an id in an admin list filter raised an OverflowError.
    Forms and serializers already refuse both in bodies (Django's and DRF's ``CharField`` and
    ``IntegerField``); the query string is read by filters and searches without such checks,
    so it is refused here, once, before any view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        message = self.refusal(request)
        if message is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")

    @staticmethod
    def refusal(request: HttpRequest) -> str | None:
        if NUL in request.path:
            return "The address contains a NUL character, which no field accepts."
        for key, values in request.GET.lists():
            if NUL in key or any(NUL in value for value in values):
                return "The query contains a NUL character, which no field accepts."
            if key not in _FREE_TEXT and any(_is_huge_integer(value) for value in values):
                return f"The value of {key[:40]} is too large a number for any id."
        return None


class ClinicTimeZoneMiddleware:
    """In the clinicians' workspace, show and read every time in the clinic's own zone.

    Django renders aware datetimes, and parses typed ones, in the active time zone; storage
    stays UTC. A clinician's clinic sets it (a nurse typing 10:05 means 10:05 on the clinic's
    wall clock, in summer or winter). A superuser with no clinic works in UTC, labelled as such.
    The membership lookup is the admin's own per-request one, so pages pay no extra query.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.utils import timezone

        if not request.path.startswith("/admin/") or not getattr(request, "user", None):
            return self.get_response(request)
        if not request.user.is_authenticated or not request.user.is_staff:
            return self.get_response(request)
        from tracker.admin.scoping import clinician_for

        membership = clinician_for(request)
        if membership is None:
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(membership.clinic.timezone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
