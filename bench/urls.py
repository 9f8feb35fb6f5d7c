"""The app's URLs plus ``/bench/trivial/``, the baseline for the load benchmark (bench/web.py only)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def trivial(request: HttpRequest) -> HttpResponse:
    """No database, no template: what the stack (gunicorn + middleware) costs on its own."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("", include("config.urls")),
]
