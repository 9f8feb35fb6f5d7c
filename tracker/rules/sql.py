"""Small helpers for the few hand-written SQL statements the sweeps need (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection


def ts(value: dt.datetime) -> object:
    """A datetime parameter in the form the backend stores (SQLite keeps UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def datetime_from_db(value: object) -> dt.datetime:
    """A datetime from raw SQL (``RETURNING``), which bypasses the ORM's converters:
    PostgreSQL hands back an aware datetime, SQLite the UTC text ``ts`` stored."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


def placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
