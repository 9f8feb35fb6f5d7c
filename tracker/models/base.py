"""Shared behaviour of clinical records: they are never hard-deleted.

A wrong record is marked "entered in error" (who, when, why) and stays in the database
and its history; queries for current care exclude it with ``.current()``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class ClinicalDeletionError(Exception):
    """Raised on any attempt to hard-delete a clinical record."""

    def __init__(self, model_name: str) -> None:
        super().__init__(f"{model_name} records are never deleted. Mark the record as entered in error instead.")


class UndeletableQuerySet(models.QuerySet):
    """A queryset whose bulk ``delete()`` is refused (admin actions, shell helpers)."""

    def delete(self) -> Any:  # type: ignore[override]
        raise ClinicalDeletionError(self.model._meta.verbose_name.capitalize())


class ClinicalQuerySet(UndeletableQuerySet):
    def current(self) -> ClinicalQuerySet:
        """Records not marked as entered in error."""
        return self.filter(entered_in_error_at__isnull=True)


class ClinicalRecord(models.Model):
    """Abstract base: creation time, last change, and the entered-in-error marker."""

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    entered_in_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    entered_in_error_reason = models.TextField(blank=True, editable=False)

    objects = ClinicalQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_entered_in_error(self) -> bool:
        return self.entered_in_error_at is not None

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ClinicalDeletionError(self._meta.verbose_name.capitalize())
