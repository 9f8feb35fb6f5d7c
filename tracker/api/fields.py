"""Request fields with the bounds the domain needs before a service sees the value.

Times far outside a treatment course (year 1, year 9999) are refused here: services do
arithmetic on them (matching windows, local midnights) that would overflow.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Model, QuerySet
from rest_framework import serializers

from tracker.api.permissions import actor_for

EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2200, 12, 31)


def _check_range(day: dt.date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise serializers.ValidationError(f"Give a date between {EARLIEST:%Y} and {LATEST:%Y}.")


class CourseDateField(serializers.DateField):
    def to_internal_value(self, value: object) -> dt.date:
        day = super().to_internal_value(value)
        _check_range(day)
        return day


class CourseDateTimeField(serializers.DateTimeField):
    """An instant; a value without an offset is refused rather than guessed."""

    def to_internal_value(self, value: object) -> dt.datetime:
        if isinstance(value, str) and value and not _has_offset(value):
            raise serializers.ValidationError("Give the time with its offset, e.g. 2026-06-01T08:00:00+01:00.")
        instant = super().to_internal_value(value)
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts (up to ±23:59).
        return utc_instant(instant)


def utc_instant(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC, refused (400) when outside the years a course can span."""
    _check_range(value.date())
    return value.astimezone(dt.UTC)


def course_day(value: dt.date) -> dt.date:
    """``value`` unchanged, refused (400) when its day is outside the years a course can span.

    A date range filter hands over the day's first or last instant (a datetime), a field a date.
    """
    _check_range(value.date() if isinstance(value, dt.datetime) else value)
    return value


def _has_offset(text: str) -> bool:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return True  # let DRF report the format error


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A reference to a row the caller may see; others answer "does not exist", like missing ids."""

    def __init__(self, *, patient_path: str = "patient", **kwargs: object) -> None:
        self.patient_path = patient_path
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Model]:
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset.none()
        return actor_for(request).scope(queryset, self.patient_path)
