"""Raising, folding, answering, acknowledging and resolving flags.

A flag is a problem with facts behind it (``tracker.models.flags``). Raising a problem that
is already open folds the new facts into it (``tracker.services.flag_insert``), relying on
the partial unique constraint (one unresolved flag per deduplication key) and the unique
(flag, fact key), so sweeps are idempotent and safe on several workers at once. A later
record that answers a fact (a dose logged late) marks it answered; a problem whose facts
are all answered is resolved by the tracker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from tracker.models import Flag, FlagFact, Patient, Severity
from tracker.services.errors import ServiceError
from tracker.services.flag_insert import NewFact as NewFact  # re-exported for the rules
from tracker.services.flag_insert import NewFlag, store_flags
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
    """Raise new problems and fold repeats into the open ones; return how many were new.

    Set-based and exactly-once (see ``store_flags``). Problems that are new or whose
    severity rose to urgent or critical are emailed once the transaction commits.
    """
    if not flags:
        return 0
    with transaction.atomic():
        result = store_flags(flags, now=timezone.now())
        if any(severity >= NOTIFY_FROM for _pk, severity in result.new + result.escalated):
            # Emailed only once the flag is committed; a broker outage is logged, not raised.
            transaction.on_commit(enqueue_notifications)
    return len(result.new)


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


@transaction.atomic
def answer_facts(
    *,
    patient_id: int,
    keys: Sequence[str],
    kinds: Sequence[str],
    note: str,
    resolved_note: str,
    now: dt.datetime,
) -> int:
    """Mark the facts ``keys`` of the patient's ``kinds`` flags answered by a later record.

    The open problems they belong to are recounted; one left with no unanswered fact is
    resolved by the tracker with ``resolved_note``, and one that still has some keeps them (a late
    dose answers its own miss, not the ones before it). Facts of a problem a clinician has
    already resolved are marked too, so the record shows the dose came in after all.
    Returns how many problems were resolved.
    """
    facts = FlagFact.objects.filter(
        key__in=list(keys), answered_at__isnull=True, flag__patient_id=patient_id, flag__kind__in=list(kinds)
    )
    flag_ids = sorted(set(facts.values_list("flag_id", flat=True)))
    if not flag_ids:
        return 0
    flags = list(
        Flag.objects.filter(pk__in=flag_ids).exclude(status=Flag.Status.RESOLVED).select_for_update().order_by("id")
    )
    facts.filter(flag_id__in=flag_ids).update(answered_at=now, answer_note=note)
    resolved = 0
    for flag in flags:
        left = flag.facts.filter(answered_at__isnull=True).count()
        if left == 0:
            # Recorded in the resolving save's history row (resolve_flag reads the row again).
            Flag.objects.filter(pk=flag.pk).update(occurrences=0, streak=None)
            resolve_flag(flag=flag, by=None, note=resolved_note, now=now)
            resolved += 1
            continue
        flag.occurrences = left
        if flag.streak is not None:
            flag.streak = min(flag.streak, left)  # a late dose may have broken the run
        flag._change_reason = "A fact was answered by a later record"
        flag.save(update_fields=["occurrences", "streak"])
    return resolved


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
