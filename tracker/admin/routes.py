"""Extra admin URLs whose views are plain functions bound to their ModelAdmin."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from django.contrib import admin
from django.urls import URLPattern, path


def bound_routes(
    model_admin: admin.ModelAdmin, keyword: str, routes: Sequence[tuple[str, Callable, str]]
) -> list[URLPattern]:
    """(route, view, name) -> URL patterns; each view gets ``model_admin`` as ``keyword``.

    Wrapped by ``admin_view``: staff login and CSRF protection, as for the admin's own views.
    The views look rows up through the ModelAdmin's clinic-scoped queryset themselves.
    """
    wrap = model_admin.admin_site.admin_view
    return [path(route, wrap(partial(view, **{keyword: model_admin})), name=name) for route, view, name in routes]
