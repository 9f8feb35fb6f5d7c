"""Raising, acknowledging and resolving flags.

Raising never reads before it writes: the insert relies on the partial unique constraint
(one unresolved flag per deduplication key) and silently drops a duplicate, so sweeps are
idempotent and safe on several workers at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from tracker.models import Flag, Patient, Severity
from tracker.services.errors import ServiceError
from tracker.services.flag_insert import NewFlag, insert_flags
from tracker.services.notifications import NOTIFY_FROM, enqueue_notifications

NOTE_REQUIRED_FROM = Severity.URGENT


def build_flag(
    *,
    patient: Patient | int,
    kind: str,
    severity: int,
    dedup_key: str,
    message: str,
    action: str,
    raised_at: dt.datetime,
    subject: models.Model | None = None,
    subject_type: ContentType | int | None = None,
    subject_id: int | None = None,
) -> NewFlag:
    """A flag to raise; pass a list of them to ``raise_flags``."""
    if subject is not None:
        subject_type = ContentType.objects.get_for_model(subject)
        subject_id = subject.pk
    return NewFlag(
        patient_id=patient if isinstance(patient, int) else patient.pk,
        kind=kind,
        severity=severity,
        dedup_key=dedup_key,
        message=message,
        action=action,
        raised_at=raised_at,
        subject_type_id=subject_type.pk if isinstance(subject_type, ContentType) else subject_type,
        subject_id=subject_id,
    )


def raise_flags(flags: Sequence[NewFlag]) -> int:
    """Insert the flags whose key has no unresolved flag yet, and return how many were new.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` per chunk: the partial unique
    constraint (one unresolved flag per key) drops duplicates, and the returned rows say
    which were new, so nothing is read first and two workers never raise a key twice.
    Urgent and critical flags are emailed once the transaction commits.
    """
    if not flags:
        return 0
    with transaction.atomic():
        severities = insert_flags(flags, created_at=timezone.now())
        if any(severity >= NOTIFY_FROM for severity in severities):
            # Emailed only once the flag is committed; a broker outage is logged, not raised.
            transaction.on_commit(enqueue_notifications)
    return len(severities)


def raise_new_flags(flags: Sequence[NewFlag]) -> int:
    """Like ``raise_flags``, but a key that ever had a flag (even resolved) is not raised again.

    For milestones and one-off findings (a response reached, a given questionnaire's
    worsening) whose condition stays true after a clinician has closed the flag.
    """
    if not flags:
        return 0
    seen = set(Flag.objects.filter(dedup_key__in=[f.dedup_key for f in flags]).values_list("dedup_key", flat=True))
    return raise_flags([f for f in flags if f.dedup_key not in seen])


def raise_flag(**kwargs) -> bool:
    """Raise one flag (see ``build_flag``); True if it was new."""
    return raise_flags([build_flag(**kwargs)]) == 1


def _require_note(flag: Flag, note: str) -> None:
    if flag.severity >= NOTE_REQUIRED_FROM and not note.strip():
        level = flag.get_severity_display().lower()
        article = "an" if level[0] in "aeiou" else "a"
        raise ServiceError({"note": f"A note is required to close {article} {level} flag."})


@transaction.atomic
def acknowledge_flag(*, flag: Flag, by: AbstractBaseUser, now: dt.datetime | None = None) -> Flag:
    """Say a clinician has seen the flag and is on it; it stays on the worklist."""
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if flag.status != Flag.Status.OPEN:
        raise ServiceError("Only an open flag can be acknowledged.")
    flag.status = Flag.Status.ACKNOWLEDGED
    flag.acknowledged_at = now or timezone.now()
    flag.acknowledged_by = by
    flag.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    return flag


@transaction.atomic
def resolve_flag(*, flag: Flag, by: AbstractBaseUser | None, note: str = "", now: dt.datetime | None = None) -> Flag:
    """Close the flag with a note (required for urgent and critical flags).

    ``by`` is None only when the tracker itself resolves a flag whose cause went away
    (a missed dose logged late); the note then says so.
    """
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if flag.status == Flag.Status.RESOLVED:
        raise ServiceError("This flag is already resolved.")
    if by is not None:
        _require_note(flag, note)
    flag.status = Flag.Status.RESOLVED
    flag.resolved_at = now or timezone.now()
    flag.resolved_by = by
    flag.resolution_note = note.strip()
    flag.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
    return flag
