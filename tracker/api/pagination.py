"""Page-number pagination with a client-chosen page size, capped so no request is unbounded."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """25 a page unless ``page_size`` says otherwise, at most 100; documented as DRF serves it.

    DRF reads ``page_size`` leniently: above the cap it serves the cap, and 0, a negative or a
    non-number falls back to the default. A page past the last, or ``page`` that is not a
    number, is a 404 ("Invalid page."). The schema says so (tests/test_api_limits.py checks it).
    """

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        limits = {
            self.page_query_param: (
                {"minimum": 1, "default": 1},
                "A page number, from 1. A page past the last (or one that is not a number) answers 404.",
            ),
            self.page_size_query_param: (
                {"minimum": 1, "maximum": self.max_page_size, "default": self.page_size},
                f"Results per page: {self.page_size} unless given, at most {self.max_page_size}. A larger "
                f"value is served as {self.max_page_size}; 0, a negative or a non-number as {self.page_size}.",
            ),
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            bounds, description = limits.get(parameter["name"], ({}, parameter.get("description")))
            parameter["schema"] = {**parameter["schema"], **bounds}
            parameter["description"] = description
        return parameters
