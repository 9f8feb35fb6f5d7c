"""Domain refusals (ServiceError, model ValidationError) as DRF's usual 400 body.

Services name the model field they refuse (``{"dose": [...]}``); the API answers in the same
shape, renaming the few fields whose request name differs, so a client sees which field it
sent was wrong and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.settings import api_settings

T = TypeVar("T")


def as_drf_error(exc: DjangoValidationError, rename: Mapping[str, str] | None = None) -> serializers.ValidationError:
    """The DRF form of a Django ValidationError: ``{field: [messages]}``."""
    rename = rename or {}
    if hasattr(exc, "error_dict"):
        detail = {
            api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else rename.get(field, field): [
                str(m) for m in messages
            ]
            for field, messages in exc.message_dict.items()
        }
    else:
        detail = {api_settings.NON_FIELD_ERRORS_KEY: [str(m) for m in exc.messages]}
    return serializers.ValidationError(detail)


def call_service(service: Callable[..., T], /, rename: Mapping[str, str] | None = None, **kwargs: object) -> T:
    """Call one service, turning its refusal into a 400 that names the field."""
    try:
        return service(**kwargs)
    except DjangoValidationError as exc:
        raise as_drf_error(exc, rename) from exc
