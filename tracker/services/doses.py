"""Recording doses: match to the plan, judge the timing, check the day's total.

Matching rules (clinical-reference §7 matching): a logged dose matches the nearest open
planned dose of the same prescription within ±½ the interval to the neighbouring dose
(capped at 12 h); within ±2 h it is on time, after that late (or early); with no match
it is unplanned. A late dose whose planned dose was already flagged missed resolves
that flag, with a note saying so.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracker import clinical
from tracker.models import DoseBasis, DoseEvent, FlagKind, PlannedDose, Prescription, Severity
from tracker.services import flags as flag_service
from tracker.services.errors import ServiceError
from tracker.services.records import mark_entered_in_error

OPEN_STATUSES = (PlannedDose.Status.PENDING, PlannedDose.Status.MISSED)


def missed_problem_key(patient_id: int, drug_id: int) -> str:
    """The missed-dose problem of one patient and drug: repeats fold into it (rules.missed_doses)."""
    return f"{FlagKind.DOSE_MISSED}:patient:{patient_id}:drug:{drug_id}"


def missed_fact_key(planned_dose_id: int) -> str:
    """One missed planned dose (or clinic session) as a fact behind its problem."""
    return f"planned:{planned_dose_id}"


MISSED_KINDS = (FlagKind.DOSE_MISSED, FlagKind.DOSE_MISSED_REPEATED)


def _window_cap() -> dt.timedelta:
    return dt.timedelta(hours=clinical.get("MATCH_WINDOW_CAP_HOURS"))


def _nearby(prescription: Prescription, around: dt.datetime) -> list[PlannedDose]:
    """The prescription's live planned doses within two window caps of ``around`` (1 query)."""
    cap = _window_cap()
    return list(
        PlannedDose.objects.filter(
            prescription=prescription,
            due_at__gte=around - 2 * cap,
            due_at__lte=around + 2 * cap,
        )
        .exclude(status=PlannedDose.Status.CANCELLED)
        .order_by("due_at")
    )


def _half_window(nearby: list[PlannedDose], index: int, offset: dt.timedelta) -> dt.timedelta:
    """§7 matching: on the side of ``offset``, half the gap to the neighbouring dose, capped."""
    cap = _window_cap()
    planned = nearby[index]
    if offset >= dt.timedelta(0):
        neighbour = nearby[index + 1].due_at if index + 1 < len(nearby) else None
        half = (neighbour - planned.due_at) / 2 if neighbour else cap
    else:
        neighbour = nearby[index - 1].due_at if index > 0 else None
        half = (planned.due_at - neighbour) / 2 if neighbour else cap
    return min(half, cap)


def match_planned_dose(prescription: Prescription, occurred_at: dt.datetime) -> PlannedDose | None:
    """The nearest open planned dose of ``prescription`` whose window holds ``occurred_at``."""
    nearby = _nearby(prescription, occurred_at)
    best: tuple[dt.timedelta, PlannedDose] | None = None
    for index, planned in enumerate(nearby):
        if planned.status not in OPEN_STATUSES:
            continue
        offset = occurred_at - planned.due_at
        if abs(offset) > _half_window(nearby, index, offset):
            continue
        if best is None or abs(offset) < best[0]:
            best = (abs(offset), planned)
    return best[1] if best else None


def matching_window(planned: PlannedDose) -> tuple[dt.datetime, dt.datetime]:
    """§7 matching: the first and last instants a logged dose may match ``planned`` (1 query)."""
    nearby = _nearby(planned.prescription, planned.due_at)
    index = next(i for i, row in enumerate(nearby) if row.pk == planned.pk)
    earliest = planned.due_at - _half_window(nearby, index, -dt.timedelta(microseconds=1))
    return earliest, planned.due_at + _half_window(nearby, index, dt.timedelta(0))


OUTSIDE_WINDOW = "outside_window"  # the code of the refusal a patient may confirm as an extra dose


def _check_patient_window(planned: PlannedDose, occurred_at: dt.datetime) -> None:
    """A patient's time far from the dose they picked is probably another dose: ask first.

    §7 matching gives each planned dose a window (±½ interval, capped); outside it the
    time is no longer that dose. The refusal carries OUTSIDE_WINDOW so the portal can offer
    "log it as an extra dose" (unplanned, as §7 "no match = unplanned"), which leaves the
    planned dose open.
    """
    earliest, latest = matching_window(planned)
    if earliest <= occurred_at <= latest:
        return
    zone = planned.patient.zone
    due = planned.due_at.astimezone(zone)
    side = "before" if occurred_at < earliest else "after"
    raise ServiceError(
        {
            "occurred_at": ServiceError(
                f"{occurred_at.astimezone(zone):%H:%M on %d %B} is too long {side} this dose's time "
                f"({due:%H:%M on %d %B}) to count as this dose: it can count only between "
                f"{earliest.astimezone(zone):%H:%M on %d %B} and {latest.astimezone(zone):%H:%M on %d %B}. "
                "Check the time, or log it as an extra dose.",
                code=OUTSIDE_WINDOW,
            )
        }
    )


def judge_timing(planned: PlannedDose | None, occurred_at: dt.datetime) -> str:
    if planned is None:
        return DoseEvent.Timing.UNPLANNED
    on_time = dt.timedelta(hours=clinical.get("ON_TIME_WINDOW_HOURS"))
    offset = occurred_at - planned.due_at
    if offset > on_time:
        return DoseEvent.Timing.LATE
    if offset < -on_time:
        return DoseEvent.Timing.EARLY
    return DoseEvent.Timing.ON_TIME


def _check_time(occurred_at: dt.datetime, now: dt.datetime, *, reporter: str = "") -> None:
    if timezone.is_naive(occurred_at):
        raise ServiceError({"occurred_at": "Give the time with its time zone."})
    tolerance = dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES"))
    if occurred_at > now + tolerance:
        raise ServiceError({"occurred_at": "That time is in the future. Enter the time you took the dose."})
    days_back = clinical.get("PATIENT_LOG_MAX_DAYS_BACK")
    if reporter == DoseEvent.Reporter.PATIENT and occurred_at < now - dt.timedelta(days=days_back):
        raise ServiceError(
            {
                "occurred_at": f"That time is more than {days_back} days ago, too long ago to log here. "
                "Please tell your care team about it instead."
            }
        )


def record_dose(*, prescription: Prescription, client_key: uuid.UUID | None = None, **kwargs) -> DoseEvent:
    """Record a dose (see ``_record_dose``), exactly once per ``client_key`` when one is given.

    ``client_key`` is the idempotency key a patient's phone made when the dose was tapped
    (an offline tap is sent again until the phone hears back). A key already stored answers
    with its event, even one undone since: the replay is the same tap, not a new dose. A
    concurrent replay that loses the race (the planned dose "already recorded", or the
    unique key) answers with the winner's event once that has committed.
    """
    if client_key is None:
        return _record_dose(prescription=prescription, **kwargs)
    existing = _by_client_key(prescription, client_key)
    if existing is not None:
        return existing
    try:
        return _record_dose(prescription=prescription, client_key=client_key, **kwargs)
    except (ServiceError, IntegrityError):
        # _record_dose's atomic block has rolled back to its savepoint: the connection is usable.
        existing = _by_client_key(prescription, client_key)
        if existing is None:
            raise
        return existing


def _by_client_key(prescription: Prescription, client_key: uuid.UUID) -> DoseEvent | None:
    """The event a phone's key already stored for this patient (history included), if any."""
    event = DoseEvent.objects.filter(patient_id=prescription.patient_id, client_key=client_key).first()
    if event is not None and event.prescription_id != prescription.pk:
        raise ServiceError({"client_key": "That tap was already used for another medicine; please tap again."})
    return event


@transaction.atomic
def _record_dose(
    *,
    prescription: Prescription,
    client_key: uuid.UUID | None = None,
    occurred_at: dt.datetime,
    reporter: str,
    recorded_by: AbstractBaseUser | None = None,
    outcome: str = DoseEvent.Outcome.TAKEN,
    planned_dose: PlannedDose | None = None,
    skip_reason: str = "",
    skip_choice: str = "",
    location: str = DoseEvent.Location.HOME,
    amount: Decimal | None = None,
    note: str = "",
    extra_dose: bool = False,
    now: dt.datetime | None = None,
) -> DoseEvent:
    """Record a dose taken or skipped and match it to the plan; see the module docstring.

    A patient who picks a planned dose and gives a time outside its §7 window is refused
    with OUTSIDE_WINDOW unless ``extra_dose`` says they confirmed it: it is then stored as
    an extra (unplanned) dose and the planned dose stays open.
    """
    now = now or timezone.now()
    _check_time(occurred_at, now, reporter=reporter)
    if prescription.entered_in_error_at is not None:
        raise ServiceError("This prescription was entered in error; doses cannot be recorded against it.")
    drug = prescription.drug
    if drug.in_clinic_only and reporter == DoseEvent.Reporter.PATIENT:
        raise ServiceError(
            f"{drug} is given only at the clinic, so it cannot be logged here. "
            "If you took it outside the clinic, please use 'Report taking it outside the clinic'."
        )
    if drug.in_clinic_only and location != DoseEvent.Location.CLINIC:
        # Staff and integrations too: a clinic-only drug taken elsewhere is an outside-clinic
        # report (critical flag), never an ordinary dose that would close a planned session.
        raise ServiceError(
            {
                "location": f"{drug} is given only at the clinic. Record it as given at the clinic, or use the "
                "outside-clinic report if it was taken elsewhere."
            }
        )
    skip_reason = _skip_reason(outcome, skip_choice, skip_reason)

    new_status = PlannedDose.Status.TAKEN if outcome == DoseEvent.Outcome.TAKEN else PlannedDose.Status.SKIPPED
    planned = planned_dose
    if planned is not None and reporter == DoseEvent.Reporter.PATIENT and outcome == DoseEvent.Outcome.TAKEN:
        # Staff attributing a dose (a session held late, a correction) are not second-guessed.
        try:
            _check_patient_window(planned, occurred_at)
        except ServiceError:
            if not extra_dose:
                raise
            planned = None  # the patient confirmed: an extra dose, the planned one stays open
    elif planned is None:
        planned = match_planned_dose(prescription, occurred_at)
    was_missed = False
    if planned is not None:
        read_status = planned.status
        if _claim(planned, prescription=prescription, new_status=new_status, now=now):
            was_missed = read_status == PlannedDose.Status.MISSED
        else:
            # Changed since it was read (logged meanwhile, missed by the sweep, given back by a
            # correction) or not this prescription's: judge the row as it is now, under a lock.
            planned = PlannedDose.objects.select_for_update().get(pk=planned.pk)
            if planned_dose is not None:
                if planned.prescription_id != prescription.pk:
                    raise ServiceError({"planned_dose": "That planned dose belongs to another prescription."})
                if planned.status not in OPEN_STATUSES:
                    raise ServiceError({"planned_dose": "This dose has already been recorded."})
            elif planned.status not in OPEN_STATUSES:  # taken by a concurrent log meanwhile
                planned = None
            if planned is not None:
                was_missed = planned.status == PlannedDose.Status.MISSED
                planned.status, planned.status_changed_at = new_status, now
                planned.save(update_fields=["status", "status_changed_at"])

    patient = prescription.patient
    event = DoseEvent(
        patient=patient,
        prescription=prescription,
        planned_dose=planned,
        outcome=outcome,
        timing=judge_timing(planned, occurred_at) if outcome == DoseEvent.Outcome.TAKEN else "",
        occurred_at=occurred_at,
        local_date=occurred_at.astimezone(patient.zone).date(),
        amount=amount,
        location=location,
        skip_choice=skip_choice,
        skip_reason=skip_reason,
        note=note.strip(),
        reporter=reporter,
        recorded_by=recorded_by,
        client_key=client_key,
        created_at=now,
    )
    try:
        # No savepoint of its own: the ServiceError leaves this function's atomic block, which
        # rolls the whole write back (or back to its own savepoint inside a caller's transaction).
        event.save()
    except IntegrityError:
        raise ServiceError({"planned_dose": "This dose has already been recorded."}) from None

    if was_missed:
        _resolve_missed_flag(planned, event, now)

    if outcome == DoseEvent.Outcome.TAKEN:
        _check_daily_maximum(event, now)
    return event


def _skip_reason(outcome: str, skip_choice: str, skip_reason: str) -> str:
    """The words kept for a skipped dose: the patient's own, else the preset's label."""
    text = skip_reason.strip()
    if outcome != DoseEvent.Outcome.SKIPPED:
        if skip_choice:
            raise ServiceError({"skip_choice": "A reason for skipping belongs only to a skipped dose."})
        return text
    if skip_choice and skip_choice not in DoseEvent.SkipChoice.values:
        raise ServiceError({"skip_choice": "Choose one of the reasons in the list."})
    if skip_choice == DoseEvent.SkipChoice.OTHER and not text:
        raise ServiceError({"skip_reason": "You chose another reason: please say what it was."})
    if not text and not skip_choice:
        raise ServiceError({"skip_reason": "Please say why the dose was skipped."})
    return text or DoseEvent.SkipChoice(skip_choice).label


def _claim(planned: PlannedDose, *, prescription: Prescription, new_status: str, now: dt.datetime) -> bool:
    """Give ``planned`` its outcome if it is still open, this prescription's, and as it was read.

    One conditional UPDATE, which also takes the row's lock until the commit: it matches
    nothing if a concurrent log, the missed-dose sweep or a correction changed the status
    since the caller read it, and the caller then reads the row again under a lock. So the
    common case costs one statement instead of a locking read plus an update.
    """
    if planned.status not in OPEN_STATUSES:
        return False
    claimed = PlannedDose.objects.filter(pk=planned.pk, prescription=prescription, status=planned.status).update(
        status=new_status, status_changed_at=now
    )
    if claimed:
        planned.status, planned.status_changed_at = new_status, now
    return bool(claimed)


def _resolve_missed_flag(planned: PlannedDose, event: DoseEvent, now: dt.datetime) -> None:
    local = event.occurred_at.astimezone(event.patient.zone)
    what = "taken" if event.outcome == DoseEvent.Outcome.TAKEN else f"skipped ({event.skip_reason})"
    note = (
        f"The dose was logged late ({event.get_reporter_display().lower()}), "
        f"{what} at {local:%H:%M on %d %b %Y} local time."
    )
    flag_service.answer_facts(
        patient_id=planned.patient_id,
        keys=[missed_fact_key(planned.pk)],
        kinds=MISSED_KINDS,
        note=note,
        resolved_note=f"Resolved automatically: every missed dose behind this flag has been recorded since. {note}",
        now=now,
    )


def _check_daily_maximum(event: DoseEvent, now: dt.datetime) -> None:
    """§6: the taken total on the patient's local calendar day must not exceed the maximum."""
    rx = event.prescription
    maximum = rx.maximum_for_patient()
    if maximum is None or rx.drug.dose_basis != DoseBasis.DAY:
        return
    # A dose counts on the day it was planned for (a 21:30 dose taken at 00:17 belongs to
    # the evening before); an unplanned dose counts on the local day it was taken.
    day = event.planned_dose.local_date if event.planned_dose else event.local_date
    totals = (
        DoseEvent.objects.current()
        .annotate(dose_day=Coalesce("planned_dose__local_date", "local_date"))
        .filter(
            patient=event.patient_id,
            # The patient's own prescriptions of the drug (an event's prescription is always its
            # patient's): the database then starts from those few rows, not from every
            # prescription of the drug in the clinic (docs/benchmarks.md, section 4).
            prescription__patient=event.patient_id,
            prescription__drug=rx.drug_id,
            dose_day=day,
            outcome=DoseEvent.Outcome.TAKEN,
        )
        # One statement: the amounts logged, plus the prescribed dose where none was given.
        .aggregate(explicit=Sum("amount"), implied=Sum("prescription__dose", filter=Q(amount__isnull=True)))
    )
    explicit = totals["explicit"] or Decimal(0)
    implied = totals["implied"] or Decimal(0)
    total = explicit + implied
    if total <= maximum:
        return
    flag_service.raise_flag(
        patient=event.patient,
        kind=FlagKind.DOSE_OVER_DAILY_MAX,
        severity=Severity.URGENT,
        dedup_key=f"{FlagKind.DOSE_OVER_DAILY_MAX}:patient:{event.patient_id}:drug:{rx.drug_id}:{day}",
        message=(
            f"{total.normalize():f} {rx.dose_unit} of {rx.drug} logged for {day:%d %b %Y}, "
            f"above the maximum of {rx.drug.describe_limit(maximum)}."
        ),
        action="Contact the patient today to check what was taken and whether they are well.",
        raised_at=now,
        subject=event,
    )


def undo_window() -> dt.timedelta:
    """[P] PATIENT_UNDO_MINUTES: how long a patient's own tap can be taken back."""
    return dt.timedelta(minutes=clinical.get("PATIENT_UNDO_MINUTES"))


def undo_patient_log(*, event: DoseEvent, by: AbstractBaseUser, now: dt.datetime) -> DoseEvent:
    """Take back a dose the patient logged by mistake, within the undo window.

    Nothing clinical is deleted: the event stays in history, marked entered in error by
    the patient, and its planned dose is given back (records._withdraw_from_care). It goes
    back to pending, not straight to missed: if its deadline has passed the missed-dose
    sweep claims it on its next run and raises the flag, as for any dose never logged,
    which setting "missed" here would skip.
    """
    minutes = clinical.get("PATIENT_UNDO_MINUTES")
    if event.reporter != DoseEvent.Reporter.PATIENT or event.recorded_by_id != by.pk:
        raise ServiceError("Only a dose you logged yourself can be undone here. Your care team can correct it.")
    if event.outside_clinic_report:
        raise ServiceError(
            "A report of taking a clinic-only medicine elsewhere cannot be undone: your care team has been told "
            "and will talk to you about it."
        )
    if event.entered_in_error_at is not None:
        raise ServiceError("This dose has already been undone.")
    if now - event.created_at > undo_window():
        raise ServiceError(
            f"More than {minutes} minutes have passed since you logged this dose, so it can no longer be undone "
            "here. If it is wrong, please tell your care team, who can correct it."
        )
    return mark_entered_in_error(
        record=event,
        by=by,
        reason=f"Undone by the patient in the portal within {minutes} minutes of logging it.",
    )


def outside_clinic_key(event_id: int) -> str:
    return f"{FlagKind.ESK_OUTSIDE_CLINIC}:event:{event_id}"


@transaction.atomic
def report_outside_clinic(
    *,
    prescription: Prescription,
    occurred_at: dt.datetime,
    reporter: str,
    recorded_by: AbstractBaseUser | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> DoseEvent:
    """Keep a patient's report of taking an in-clinic-only drug outside the clinic, and flag it.

    The explicit path for what ``record_dose`` refuses: the report is stored as it was
    told (never matched to a planned session) and a critical flag is raised in the same
    transaction (clinical-reference §0 esk.outside_clinic, §1 setting).
    """
    now = now or timezone.now()
    _check_time(occurred_at, now)  # no limit on how far back: a safety report is never turned away
    drug = prescription.drug
    if not drug.in_clinic_only:
        raise ServiceError(
            {"prescription": f"{drug} can be logged as a normal dose; this report is for clinic-only medicines."}
        )
    patient = prescription.patient
    event = DoseEvent(
        patient=patient,
        prescription=prescription,
        outcome=DoseEvent.Outcome.TAKEN,
        timing=DoseEvent.Timing.UNPLANNED,
        occurred_at=occurred_at,
        local_date=occurred_at.astimezone(patient.zone).date(),
        location=DoseEvent.Location.HOME,
        note=note.strip(),
        reporter=reporter,
        recorded_by=recorded_by,
        outside_clinic_report=True,
        created_at=now,
    )
    event.save()
    local = occurred_at.astimezone(patient.zone)
    flag_service.raise_flag(
        patient=patient,
        kind=FlagKind.ESK_OUTSIDE_CLINIC,
        severity=Severity.CRITICAL,
        dedup_key=outside_clinic_key(event.pk),
        message=(
            f"Patient reports taking {drug} outside the clinic at {local:%H:%M on %d %b %Y} (local time)"
            + (f': "{event.note}".' if event.note else ".")
        ),
        action="Contact the patient now to check they are safe and find out where the medicine came from.",
        raised_at=now,
        subject=event,
    )
    return event
