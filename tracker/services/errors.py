"""Domain exceptions raised by services when they cannot act."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ServiceError(ValidationError):
    """A request the domain refuses, with a message meant for the person who made it."""
