"""Bulk work on flags: acknowledge or resolve many at once, each through the single-flag service.

Ticked flags: each flag is its own transaction, so one flag that cannot be closed (an
urgent flag without a note, a flag someone else just resolved) does not undo the others,
and the outcome lists what was refused and why. A patient's row on the triage worklist is
one step instead: all of the row's flags or none, with the note kept on each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from tracker.models import Flag, Severity
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


@transaction.atomic
def acknowledge_patient_flags(*, flags: Iterable[Flag], by: AbstractBaseUser, now: dt.datetime | None = None) -> int:
    """Acknowledge a patient's open flags in one step; already acknowledged ones stay as they are."""
    done = 0
    for flag in flags:
        if flag.status == Flag.Status.OPEN:
            acknowledge_flag(flag=flag, by=by, now=now)
            done += 1
    return done


@transaction.atomic
def resolve_patient_flags(
    *, flags: Sequence[Flag], by: AbstractBaseUser, note: str, now: dt.datetime | None = None
) -> int:
    """Resolve a patient's flags in one step with one note, kept on each flag; all or none.

    An urgent or critical flag needs a note, so the whole row is refused without one
    rather than closing the warnings and leaving the urgent flag behind unexplained.
    """
    if not note.strip() and any(flag.severity >= Severity.URGENT for flag in flags):
        worst = max(flags, key=lambda flag: flag.severity)
        level = worst.get_severity_display().lower()
        raise ServiceError(
            {"note": f"A note is required: this patient has {'an' if level[0] in 'aeiou' else 'a'} {level} flag."}
        )
    for flag in flags:
        resolve_flag(flag=flag, by=by, note=note, now=now)
    return len(flags)
