"""Weights (with the patient's current weight kept in step) and the other clinical measurements.

``Patient.weight_kg`` is what weight-based doses (IV ketamine, clinical-reference §2) are
worked out from, so it must be the latest weight on record: every recorded weight and every
weight marked entered in error updates it in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Case, Count, OuterRef, Subquery, TextField, Value, When
from django.db.models.functions import Concat
from django.utils import timezone

from tracker import clinical
from tracker.models import ClinicalMeasurement, Flag, FlagFact, FlagKind, Patient, WeightMeasurement
from tracker.models.measurements import MEASUREMENT_KINDS, range_message, unknown_unit_message
from tracker.services import flags as flag_service
from tracker.services.errors import ServiceError


@transaction.atomic
def record_weight(
    *,
    patient: Patient,
    weight_kg: Decimal,
    recorded_by: AbstractBaseUser | None,
    measured_at: dt.datetime | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> WeightMeasurement:
    """Store a weight; if it is the patient's latest, it becomes their current weight."""
    now = now or timezone.now()
    measured_at = measured_at or now
    if measured_at > now + dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")):
        raise ServiceError({"measured_at": "That time is in the future."})
    # Lock the patient first: two weights recorded at once must not leave the older as current.
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    measurement = WeightMeasurement(
        patient=locked,
        weight_kg=weight_kg,
        measured_at=measured_at,
        recorded_by=recorded_by,
        note=note.strip(),
        created_at=now,
    )
    measurement.full_clean()  # the plausible range, in the model's own words
    measurement.save()
    sync_current_weight(patient=locked)
    patient.weight_kg = locked.weight_kg  # the caller's copy too
    answer_monitoring(patient=patient, measure="weight", measured_at=measured_at, now=now)
    return measurement


def sync_current_weight(*, patient: Patient) -> Patient:
    """Set ``patient.weight_kg`` to the latest current measurement, writing only on a change.

    With no current measurement left (the only one was entered in error) the weight is
    cleared: a weight known to be wrong must not be dosed on, and IV ketamine then asks
    for a new one. Call inside a transaction that holds the patient's row lock.
    """
    latest = (
        WeightMeasurement.objects.current()
        .filter(patient=patient)
        .order_by("-measured_at", "-id")
        .values_list("weight_kg", "measured_at")
        .first()
    )
    weight = latest[0] if latest else None
    if patient.weight_kg != weight:
        patient.weight_kg = weight
        patient._change_reason = (  # kept in the patient's history
            f"Current weight from the measurement of {latest[1]:%Y-%m-%d %H:%M} UTC"
            if latest
            else "Current weight cleared: its measurement was entered in error"
        )
        patient.save(update_fields=["weight_kg", "updated_at"])
    return patient


@transaction.atomic
def record_measurement(
    *,
    patient: Patient,
    kind: str,
    value: Decimal,
    recorded_by: AbstractBaseUser | None,
    diastolic: Decimal | None = None,
    measured_at: dt.datetime | None = None,
    note: str = "",
    unit: str = "",
    now: dt.datetime | None = None,
) -> ClinicalMeasurement:
    """Store one height, blood pressure, pulse or blood-test result in its kind's unit.

    The kind fixes the stored unit (``MEASUREMENT_KINDS``). ``unit`` is what the value was typed
    in: blank or the stored unit as is; another unit the kind has (glucose and lipids in mmol/L,
    as UK laboratories report them) is converted on entry, so the stored value, its LOINC code
    and its UCUM unit stay one. A unit the kind has not is refused naming the ones it has, and a
    value outside the plausible range is refused naming the range in the unit typed, before
    the database's own check would.
    """
    now = now or timezone.now()
    measured_at = measured_at or now
    if measured_at > now + dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")):
        raise ServiceError({"measured_at": "That time is in the future."})
    typed = value
    spec = MEASUREMENT_KINDS.get(kind)
    if unit.strip() and spec is not None:
        unit = unit.strip()
        if refusal := unknown_unit_message(kind, unit):
            raise ServiceError({"unit": refusal})
        value = spec.to_stored(typed, unit)
        if not spec.low <= value <= spec.high:
            raise ServiceError({"value": range_message(kind, unit)})
    measurement = ClinicalMeasurement(
        patient=patient,
        kind=kind,
        value=value,
        diastolic=diastolic,
        measured_at=measured_at,
        recorded_by=recorded_by,
        note=note.strip(),
        created_at=now,
    )
    measurement.full_clean()  # sets the unit; the range in the model's own words
    if value != typed:  # the history row keeps what was typed
        measurement._change_reason = (
            f"Entered as {typed.normalize():f} {spec.label_of(unit)}; stored as {measurement.display_value}"
        )
    measurement.save()
    answer_monitoring(patient=patient, measure=kind, measured_at=measured_at, now=now)
    return measurement


def answer_monitoring(*, patient: Patient, measure: str, measured_at: dt.datetime, now: dt.datetime) -> int:
    """Answer the overdue-monitoring facts a new measurement fulfils; resolve a flag left with none.

    The measurement is judged as the overdue sweep judges it (``selectors.monitoring``): an open
    fact (a missed due date) is answered once its date is no longer missed, that is once every
    measure of its schedule has been recorded since its window opened. So a BP without its
    glucose answers nothing, a late weight that fulfils week 8 also answers the week 4 it
    stands for, and a measurement dated before the window answers nothing. No open monitoring
    fact for this patient, one query. Returns how many flags were resolved.
    """
    from tracker.rules import loaders  # imported here: tracker.rules loads the services on import
    from tracker.rules.monitoring import fact_key, fact_prefix
    from tracker.selectors.monitoring import measure_label, missed_by_patient, schedules_named

    prefixes = tuple(fact_prefix(name) for name, s in schedules_named().items() if measure in s.measures)
    open_keys = [
        key
        for key in FlagFact.objects.filter(
            flag__patient_id=patient.pk, flag__kind=FlagKind.MONITOR_OVERDUE, answered_at__isnull=True
        ).values_list("key", flat=True)
        if key.startswith(prefixes)
    ]
    if not open_keys:
        return 0
    courses = loaders.courses_by_patient([patient.pk]).get(patient.pk, [])
    missed = missed_by_patient({patient.pk: patient.zone}, {patient.pk: courses}, now=now).get(patient.pk, [])
    still_missed = {fact_key(m.schedule, m.due_on) for m in missed}
    answered = [key for key in open_keys if key not in still_missed]
    if not answered:
        return 0
    local = measured_at.astimezone(patient.zone)
    note = f"{measure_label(measure)} recorded, measured {local:%d %b %Y %H:%M} ({local.tzname()})."
    return _answer(patient.pk, answered, note, now)


def _answer(patient_id: int, keys: Sequence[str], note: str, now: dt.datetime) -> int:
    """The one answer call for monitoring facts, from a new measurement or from the sweep."""
    return flag_service.answer_facts(
        patient_id=patient_id,
        keys=keys,
        kinds=[FlagKind.MONITOR_OVERDUE],
        note=note,
        resolved_note=f"Resolved automatically: every overdue measurement behind this flag has been recorded. {note}",
        now=now,
    )


def answer_stale_monitoring(
    stale: Mapping[int, Sequence[str]], zones: Mapping[int, ZoneInfo], *, now: dt.datetime
) -> int:
    """Answer the open monitoring facts the sweep no longer finds missed, per patient.

    ``answer_monitoring`` answers only when a measurement is recorded, which misses two cases:
    a measurement committed while the sweep was raising its fact (it found no fact to answer),
    and a course stopped with facts open (nothing will be measured for it). The sweep finds
    them from the facts it reads anyway (no extra statement when there are none) and answers
    them here with the same call. Returns how many flags were resolved.
    """
    resolved = 0
    for patient_id, keys in stale.items():  # rare: only where a race or a stop left facts open
        local = now.astimezone(zones[patient_id])
        note = (
            f"No longer owed on {local:%d %b %Y %H:%M} ({local.tzname()}): measured in its window, "
            "or the course it followed has stopped."
        )
        resolved += _answer(patient_id, keys, note, now)
    return resolved


@transaction.atomic
def reopen_monitoring_facts(fact_ids: Sequence[int], zones: Mapping[int, ZoneInfo], *, now: dt.datetime) -> int:
    """Owe again the answered monitoring facts whose date the sweep finds missed again.

    That happens when the measurement that answered them was entered in error: the date has
    nothing current in its window. The facts of open flags are unanswered (their answer note
    kept, behind a line saying why, timed in the patient's zone from ``zones``), each flag's
    count is recounted, and each gets a history row saying so. Resolved flags are not
    touched: the sweep raises their facts anew. Set-based, like the sweep that calls it: six
    statements however many flags and zones. Returns how many facts were reopened.
    """
    held_by = set(FlagFact.objects.filter(pk__in=list(fact_ids)).values_list("flag_id", flat=True))
    owners = dict(  # locked in id order, as store_flags and answer_facts lock them
        Flag.objects.filter(pk__in=held_by, kind=FlagKind.MONITOR_OVERDUE)
        .exclude(status=Flag.Status.RESOLVED)
        .select_for_update()
        .order_by("id")
        .values_list("id", "patient_id")
    )
    flags = list(owners)
    by_why: dict[str, list[int]] = defaultdict(list)
    for flag_id, patient_id in owners.items():
        local = now.astimezone(zones[patient_id])
        why = f"Owed again on {local:%d %b %Y %H:%M} ({local.tzname()}): what answered it was entered in error. "
        by_why[why].append(flag_id)
    reopened = 0
    if by_why:  # one statement: each flag's line in its patient's zone
        whens = [When(flag_id__in=ids, then=Value(why)) for why, ids in by_why.items()]
        why_of = Case(*whens, output_field=TextField())
        reopened = FlagFact.objects.filter(pk__in=fact_ids, flag_id__in=flags, answered_at__isnull=False).update(
            answered_at=None, answer_note=Concat(why_of, "answer_note", output_field=TextField())
        )
    unanswered = (
        FlagFact.objects.filter(flag_id=OuterRef("pk"), answered_at__isnull=True)
        .order_by()
        .values("flag_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    Flag.objects.filter(pk__in=flags).update(occurrences=Subquery(unanswered))
    Flag.history.bulk_history_create(
        list(Flag.objects.filter(pk__in=flags)),
        update=True,
        default_change_reason="A monitoring fact is owed again: the measurement that answered it was entered in error",
        default_date=now,
    )
    return reopened
