"""Prescribing: new courses, dose changes as new versions, stopping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tracker import dose_checks, scheduling
from tracker.models import Clinician, DoseBasis, DoseSchedule, Drug, Patient, PlannedDose, Prescription
from tracker.services.errors import ServiceError


@dataclass(frozen=True)
class ScheduleSpec:
    """When doses are due, in the patient's local time (see DoseSchedule)."""

    kind: str = DoseSchedule.Kind.DAILY
    times_of_day: Sequence[str] = ("08:00",)
    weekdays: Sequence[int] = field(default_factory=tuple)
    interval_days: int = 1
    phase: str = ""
    prn_max_doses_per_day: int | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


def _doses_per_day(specs: Sequence[ScheduleSpec]) -> int:
    """The most doses a day the schedules plan (a PRN schedule counts its daily maximum)."""
    return sum(
        (s.prn_max_doses_per_day or 1) if s.kind == DoseSchedule.Kind.PRN else len(s.times_of_day) for s in specs
    )


def _checked(rx: Prescription, review: dose_checks.DoseReview) -> None:
    """Refuse ``rx`` if the dose checks (tracker/dose_checks.py) or the model's own validation object.

    Every problem is reported at once, each on its field; warnings are kept on the version.
    """
    errors: dict[str, list[str]] = {name: [message] for name, message in review.errors.items()}
    try:
        rx.full_clean()
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, [])
            errors[name] += [m for m in messages if m not in errors[name]]
    if errors:
        raise ServiceError(errors)
    rx.dose_warnings = review.warnings


def _add_schedule(
    rx: Prescription,
    spec: ScheduleSpec,
    now: dt.datetime,
    active_from: dt.datetime,
    *,
    created_by: AbstractBaseUser | None = None,
    reason: str = "",
) -> DoseSchedule:
    schedule = DoseSchedule(
        created_by=created_by,
        change_reason=reason,
        prescription=rx,
        kind=spec.kind,
        times_of_day=[] if spec.kind == DoseSchedule.Kind.PRN else list(spec.times_of_day),
        weekdays=list(spec.weekdays),
        interval_days=spec.interval_days,
        phase=spec.phase,
        prn_max_doses_per_day=spec.prn_max_doses_per_day,
        start_date=spec.start_date or rx.start_date,
        end_date=spec.end_date,
        created_at=now,
        active_from=active_from,
    )
    schedule.full_clean()
    schedule.save()
    return schedule


@transaction.atomic
def prescribe(
    *,
    patient: Patient,
    drug: Drug,
    dose: Decimal,
    start_date: dt.date,
    prescriber: Clinician,
    schedules: Sequence[ScheduleSpec] = (ScheduleSpec(),),
    route: str | None = None,
    end_date: dt.date | None = None,
    indication: str = "",
    dose_unit: str | None = None,
    now: dt.datetime | None = None,
) -> Prescription:
    """Start a prescription with its schedules and plan its doses over the horizon.

    The dose checks (§1, §2, §6: tracker/dose_checks.py) refuse with a ServiceError naming the
    field; their warnings save and are kept on ``rx.dose_warnings``. ``dose_unit`` None means the
    drug's own unit; another unit is refused, naming the drug's.
    """
    now = now or timezone.now()
    review = dose_checks.review_dose(
        patient=patient,
        drug=drug,
        dose=dose,
        dose_unit=dose_unit,
        indication=indication,
        start_date=start_date,
        first_course=True,
        doses_per_day=_doses_per_day(schedules),
    )
    rx = Prescription(
        patient=patient,
        drug=drug,
        dose=dose,
        dose_unit=dose_unit or drug.dose_unit,
        route=route or drug.routes[0],
        start_date=start_date,
        end_date=end_date,
        prescriber=prescriber,
        indication=indication,
        created_at=now,
    )
    _checked(rx, review)
    rx.save()
    made = [_add_schedule(rx, spec, now, active_from=now, created_by=prescriber.user) for spec in schedules]
    _check_daily_total(rx, now)
    scheduling.extend_horizon(now=now, schedules=made)
    return rx


@transaction.atomic
def change_dose(
    *,
    prescription: Prescription,
    new_dose: Decimal,
    effective_date: dt.date,
    reason: str,
    prescriber: Clinician,
    schedules: Sequence[ScheduleSpec] | None = None,
    now: dt.datetime | None = None,
) -> Prescription:
    """Make a new version of ``prescription`` at ``new_dose`` from ``effective_date``.

    The old version is kept, marked superseded and ended the day before; its past planned
    doses stay as they were and its future ones are replaced by the new version's.
    Schedules are copied from the old version unless new ones are given.
    """
    now = now or timezone.now()
    old = Prescription.objects.select_for_update().get(pk=prescription.pk)
    if old.status != Prescription.Status.ACTIVE or old.entered_in_error_at is not None:
        raise ServiceError("Only an active prescription can have its dose changed.")
    if not reason.strip():
        raise ServiceError({"change_reason": "Say why the dose is changing (titration, taper, side effects...)."})
    if effective_date < old.start_date:
        raise ServiceError({"start_date": "A dose change cannot take effect before the prescription started."})
    # The change takes effect at local midnight of the effective day (or now, if that
    # has passed): the old plan runs until then, the new one from then.
    switch_at = max(now, scheduling.local_midnight(effective_date, old.patient.zone))
    old_schedules = list(_live_schedules(old, switch_at))
    if schedules is None:
        # Copy the schedules still running at the switch, keeping their phase dates (an
        # esketamine induction that ends in week 4 still ends in week 4).
        schedules = [
            ScheduleSpec(
                kind=s.kind,
                times_of_day=s.times_of_day,
                weekdays=s.weekdays,
                interval_days=s.interval_days,
                phase=s.phase,
                prn_max_doses_per_day=s.prn_max_doses_per_day,
                start_date=max(s.start_date, effective_date),
                end_date=s.end_date,
            )
            for s in old_schedules
            if s.end_date is None or s.end_date >= effective_date
        ]
    review = dose_checks.review_dose(
        patient=old.patient,
        drug=old.drug,
        dose=new_dose,
        dose_unit=old.dose_unit,
        indication=old.indication,
        start_date=effective_date,
        first_course=False,
        doses_per_day=_doses_per_day(schedules),
    )
    new = Prescription(
        patient=old.patient,
        drug=old.drug,
        dose=new_dose,
        dose_unit=old.dose_unit,
        route=old.route,
        start_date=effective_date,
        end_date=old.end_date if old.end_date and old.end_date >= effective_date else None,
        prescriber=prescriber,
        indication=old.indication,
        change_reason=reason.strip(),
        replaces=old,
        created_at=now,
    )
    _checked(new, review)
    DoseSchedule.objects.filter(id__in=[s.id for s in old_schedules]).update(active_until=switch_at)
    old.status = Prescription.Status.SUPERSEDED
    old.end_date = max(old.start_date, effective_date - dt.timedelta(days=1))
    old._change_reason = f"Superseded by a dose change: {reason.strip()}"
    old.save(update_fields=["status", "end_date", "updated_at"])
    new.save()
    made = [
        _add_schedule(new, spec, now, active_from=switch_at, created_by=prescriber.user, reason=reason.strip())
        for spec in schedules
    ]
    _check_daily_total(new, now)
    scheduling.replan(schedules=old_schedules, now=now)
    scheduling.extend_horizon(now=now, schedules=made)
    return new


@transaction.atomic
def stop_prescription(
    *, prescription: Prescription, end_date: dt.date, reason: str, now: dt.datetime | None = None
) -> Prescription:
    """End a course; future planned doses are withdrawn, past ones are kept."""
    now = now or timezone.now()
    rx = Prescription.objects.select_for_update().get(pk=prescription.pk)
    if rx.status != Prescription.Status.ACTIVE:
        raise ServiceError("This prescription is not active.")
    if not reason.strip():
        raise ServiceError({"change_reason": "Say why the prescription is stopping."})
    rx.status = Prescription.Status.STOPPED
    rx.end_date = max(rx.start_date, end_date)
    rx.change_reason = reason.strip()
    rx.save(update_fields=["status", "end_date", "change_reason", "updated_at"])
    # Doses stop after the end date's last local day, or now if that has passed. Earlier
    # versions still planned past that (a dose change due next week) stop too.
    # The requested last day rules the plan, even when it falls before this version's own
    # start (a dose change due next week, stopped today): the record's end date cannot.
    last_day = end_date
    stop_at = max(now, scheduling.local_midnight(last_day + dt.timedelta(days=1), rx.patient.zone))
    chain = _version_chain(rx)
    schedules = [s for version in chain for s in _live_schedules(version, stop_at)]
    DoseSchedule.objects.filter(id__in=[s.id for s in schedules]).update(active_until=stop_at)
    scheduling.replan(schedules=schedules, now=now)
    # A stop entered late ("stopped yesterday"): doses already planned after the last day
    # were never meant to be taken, so they are withdrawn rather than flagged missed.
    PlannedDose.objects.filter(
        prescription__in=chain, status=PlannedDose.Status.PENDING, local_date__gt=last_day
    ).update(status=PlannedDose.Status.CANCELLED, status_changed_at=now)
    return rx


def _live_schedules(prescription: Prescription, at: dt.datetime):
    """Schedules of ``prescription`` still planning doses after ``at`` (an end only ever moves earlier)."""
    return prescription.schedules.current().filter(Q(active_until__isnull=True) | Q(active_until__gt=at))


def _version_chain(rx: Prescription) -> list[Prescription]:
    """``rx`` and every earlier version it replaces, newest first."""
    chain = [rx]
    while chain[-1].replaces_id is not None:
        chain.append(Prescription.objects.get(pk=chain[-1].replaces_id))
    return chain


def _check_daily_total(rx: Prescription, now: dt.datetime) -> None:
    """§6: the day's total over all the version's schedules must not exceed the label maximum.

    Also records the version's regular doses a day, which adequacy judgements (§3, §4) use.

    Each schedule checks itself; this catches two schedules (or a PRN beside a regular one)
    that are each within the limit but together above it.
    """
    live = list(_live_schedules(rx, now))
    regular = sum(len(s.times_of_day) for s in live if s.kind != DoseSchedule.Kind.PRN)
    if regular != rx.regular_doses_per_day:
        Prescription.objects.filter(pk=rx.pk).update(regular_doses_per_day=regular)
        rx.regular_doses_per_day = regular
    maximum, named = dose_checks.patient_maximum(rx.drug, rx.patient, rx.start_date)
    if maximum is None or rx.drug.dose_basis != DoseBasis.DAY:
        return
    per_day = sum(s.doses_per_day for s in live)
    total = rx.dose * per_day
    if total > maximum:
        raise ServiceError(
            {
                "schedules": f"Together the schedules give {per_day} doses of {rx.dose.normalize():f} {rx.dose_unit}, "
                f"{total.normalize():f} {rx.dose_unit} a day, above the maximum for {named}."
            }
        )


@transaction.atomic
def reschedule(
    *,
    prescription: Prescription,
    schedules: Sequence[ScheduleSpec],
    reason: str,
    changed_by: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> list[DoseSchedule]:
    """New dose times for the same dose: the old schedules end now, the new ones start now.

    Past planned doses keep the times they had; only future ones follow the new times. The
    new schedule rows are the new version: who made them, when, and why are kept on them.
    """
    now = now or timezone.now()
    rx = Prescription.objects.select_for_update().get(pk=prescription.pk)
    if rx.status != Prescription.Status.ACTIVE or rx.entered_in_error_at is not None:
        raise ServiceError("Only an active prescription can be rescheduled.")
    if not reason.strip():
        raise ServiceError({"change_reason": "Say why the dose times are changing."})
    # New times can take the day's total above the usual range: such a warning joins the version's.
    # The dose itself was checked when this version was made, so only warnings are taken here.
    review = dose_checks.review_dose(
        patient=rx.patient,
        drug=rx.drug,
        dose=rx.dose,
        dose_unit=rx.dose_unit,
        indication=rx.indication,
        start_date=rx.start_date,
        first_course=False,
        doses_per_day=_doses_per_day(schedules),
    )
    added = [w for w in review.warnings if w not in rx.dose_warnings]
    if added:
        rx.dose_warnings = [*rx.dose_warnings, *added]
        rx._change_reason = f"Rescheduled: {reason.strip()}"
        rx.save(update_fields=["dose_warnings", "updated_at"])
    old = list(_live_schedules(rx, now))
    DoseSchedule.objects.filter(id__in=[s.id for s in old]).update(active_until=now)
    made = [
        _add_schedule(rx, spec, now, active_from=now, created_by=changed_by, reason=reason.strip())
        for spec in schedules
    ]
    _check_daily_total(rx, now)
    scheduling.replan(schedules=old, now=now)
    scheduling.extend_horizon(now=now, schedules=made)
    return made
