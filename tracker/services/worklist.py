"""Bulk work on flags: acknowledge or resolve many at once, each through the single-flag service.

Each flag is its own transaction: one flag that cannot be closed (an urgent flag without
a note, a flag someone else just resolved) must not undo the others. The outcome lists
what was refused and why, for the clinician to see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser

from tracker.models import Flag
from tracker.services.errors import ServiceError
from tracker.services.flags import acknowledge_flag, resolve_flag


@dataclass
class BulkOutcome:
    done: int = 0
    refused: list[tuple[Flag, str]] = field(default_factory=list)


def service_message(error: ServiceError) -> str:
    """The service's own words, whatever shape its ValidationError has."""
    return " ".join(error.messages)


def _each(flags: Iterable[Flag], act: Callable[[Flag], object]) -> BulkOutcome:
    outcome = BulkOutcome()
    for flag in flags:
        try:
            act(flag)
        except ServiceError as error:
            outcome.refused.append((flag, service_message(error)))
        else:
            outcome.done += 1
    return outcome


def acknowledge_flags(*, flags: Iterable[Flag], by: AbstractBaseUser, now: dt.datetime | None = None) -> BulkOutcome:
    """Acknowledge each open flag; flags already acknowledged or resolved are reported."""
    return _each(flags, lambda flag: acknowledge_flag(flag=flag, by=by, now=now))


def resolve_flags(
    *, flags: Iterable[Flag], by: AbstractBaseUser, note: str, now: dt.datetime | None = None
) -> BulkOutcome:
    """Resolve each flag with the same note; urgent and critical ones refuse an empty note."""
    return _each(flags, lambda flag: resolve_flag(flag=flag, by=by, note=note, now=now))
