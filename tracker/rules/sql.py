"""Small helpers for the few hand-written SQL statements the sweeps need (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection


def ts(value: dt.datetime) -> object:
    """A datetime parameter in the form the backend stores (SQLite keeps UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
