"""In-clinic ketamine/esketamine sessions: start, BP decision, dosing, monitoring, completion.

Each step validates with messages named after the field the clinician fixes, and returns
the warnings the clinician should see (clinical-reference §1, §2). Two rules are enforced
here rather than only flagged afterwards:

- §1 bp_threshold: a pre-dose BP above 140/90 refuses dosing until a withhold/proceed
  decision is recorded. A withheld session gives no dose: its planned session is recorded
  as skipped (a DoseEvent with outcome "skipped" and the reason), so the missed-session
  rule does not fire for a dose the clinic chose not to give.
- Completing a session records the dose through ``record_dose`` (location clinic,
  reporter clinician, matched to the planned session), so adherence and the plan see it.

Discharge before the minimum observation time or before recovery is recorded as it
happened (the patient may leave against advice) and flagged by ``tracker.rules.ketamine``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracker import clinical
from tracker.models import (
    DoseEvent,
    Flag,
    FlagKind,
    InClinicSession,
    PlannedDose,
    Prescription,
    Route,
    SessionAddendum,
)
from tracker.models.clinics import Clinician
from tracker.models.patients import Patient
from tracker.models.sessions import bp_text
from tracker.services import flags as flag_service
from tracker.services.doses import OPEN_STATUSES, missed_fact_key, record_dose
from tracker.services.errors import ServiceError

Status = InClinicSession.Status
Decision = InClinicSession.BpDecision

PRE_DOSE_FIELDS = ("bp_before_systolic", "bp_before_diastolic", "bp_before_at")
DOSING_FIELDS = ("devices", "dose_mg_per_kg", "infusion_minutes", "first_device_at", "lot_number")
MONITORING_FIELDS = (
    "bp_40min_systolic",
    "bp_40min_diastolic",
    "bp_40min_at",
    "spo2_lowest",
    "moaas_lowest",
    "cadss_total",
    "respiratory_depression",
    "observation_started_at",
    "adverse_events",
    "bp_discharge_systolic",
    "bp_discharge_diastolic",
    "moaas_at_discharge",
    "dissociation_resolved",
    "no_driving_acknowledged",
    "rems_form_submitted_at",
)
TAKEN_PLANNED_SESSION = "This planned session already has a session record."


@dataclass
class SessionResult:
    session: InClinicSession
    warnings: list[str] = field(default_factory=list)


def session_missed_key(patient_id: int, drug_id: int) -> str:
    """The missed-session problem of one patient and clinic-only drug; its facts are the sessions."""
    return f"{FlagKind.ESK_SESSION_MISSED}:patient:{patient_id}:drug:{drug_id}"


def bp_warning(session: InClinicSession) -> str | None:
    """§1 bp_threshold: the warning shown while a high pre-dose BP has no decision."""
    if not session.pre_dose_bp_high:
        return None
    limit = f"{clinical.get('BP_THRESHOLD_SYSTOLIC')}/{clinical.get('BP_THRESHOLD_DIASTOLIC')}"
    return (
        f"Blood pressure before dosing is {bp_text(session.bp_before_systolic, session.bp_before_diastolic)}, "
        f"above the label threshold of {limit} mmHg: consider withholding the dose. "
        "Record the decision (withhold or proceed) and the reason before dosing."
    )


def _not_future(value: dt.datetime | None, field_name: str, now: dt.datetime) -> None:
    tolerance = dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES"))
    if value is not None and value > now + tolerance:
        raise ServiceError({field_name: "That time is in the future."})


def _lock(session: InClinicSession) -> InClinicSession:
    """Re-read under a row lock: two tabs on one session must not overwrite each other."""
    locked = (
        InClinicSession.objects.select_for_update().select_related("prescription__drug", "patient").get(pk=session.pk)
    )
    if locked.entered_in_error_at is not None:
        raise ServiceError("This session was entered in error and can no longer be changed.")
    return locked


def _save(session: InClinicSession) -> None:
    session.full_clean(validate_constraints=False)  # the database checks them; clean() words the messages
    try:
        with transaction.atomic():
            session.save()
    except IntegrityError as exc:
        if "planned_dose" not in str(exc):  # a race on the planned session; anything else is a bug
            raise
        raise ServiceError({"planned_dose": TAKEN_PLANNED_SESSION}) from None


def _set(session: InClinicSession, values: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for name, value in values.items():
        if name not in allowed:
            raise ServiceError(f"{name} cannot be set at this step.")
        setattr(session, name, value)


@transaction.atomic
def start_session(
    *,
    prescription: Prescription,
    administered_by: Clinician,
    planned_dose: PlannedDose | None = None,
    bp_before_systolic: int | None = None,
    bp_before_diastolic: int | None = None,
    bp_before_at: dt.datetime | None = None,
    care_setting: str | None = None,
    preparation_confirmed: bool | None = None,
    now: dt.datetime | None = None,
) -> SessionResult:
    """Open a session for a clinic-only prescription, optionally with the pre-dose blood pressure.

    The care setting defaults to the patient's last session's (the nurse confirms it). An
    outpatient esketamine session needs the patient's REMS enrolment on record (§1 setting).
    """
    now = now or timezone.now()
    drug = prescription.drug
    care_setting = care_setting or last_care_setting(prescription.patient)
    if not drug.in_clinic_only:
        raise ServiceError({"prescription": f"{drug} is not a clinic-only medicine; record its doses as usual."})
    if prescription.status != Prescription.Status.ACTIVE or prescription.entered_in_error_at is not None:
        raise ServiceError({"prescription": "This prescription is not active; sessions need an active prescription."})
    if administered_by.clinic_id != prescription.patient.clinic_id or not administered_by.is_active:
        raise ServiceError({"administered_by": "The administering clinician must work at the patient's clinic."})
    if planned_dose is not None:
        if planned_dose.prescription_id != prescription.pk:
            raise ServiceError({"planned_dose": "That planned session belongs to another prescription."})
        if planned_dose.status not in OPEN_STATUSES:
            raise ServiceError({"planned_dose": "That planned session has already been recorded."})
        if InClinicSession.objects.current().filter(planned_dose=planned_dose).exists():
            raise ServiceError({"planned_dose": TAKEN_PLANNED_SESSION})
    _not_future(bp_before_at, "bp_before_at", now)
    _check_rems_enrolment(prescription, care_setting, now)
    session = InClinicSession(
        care_setting=care_setting,
        preparation_confirmed=preparation_confirmed,
        patient=prescription.patient,
        prescription=prescription,
        planned_dose=planned_dose,
        administered_by=administered_by,
        route=prescription.route,
        bp_before_systolic=bp_before_systolic,
        bp_before_diastolic=bp_before_diastolic,
        bp_before_at=bp_before_at or (now if bp_before_systolic is not None else None),
        created_at=now,
    )
    _save(session)
    return SessionResult(session, [w for w in [bp_warning(session)] if w])


def last_care_setting(patient: Patient) -> str:
    """The setting of the patient's last session (what carries over), else outpatient."""
    last = (
        InClinicSession.objects.current().filter(patient=patient).order_by("-created_at").values("care_setting").first()
    )
    return last["care_setting"] if last else InClinicSession.CareSetting.OUTPATIENT


def _check_rems_enrolment(prescription: Prescription, care_setting: str, now: dt.datetime) -> None:
    """§1 setting: esketamine outpatients are enrolled in the Spravato REMS before their first session."""
    if care_setting != InClinicSession.CareSetting.OUTPATIENT or not prescription.drug.is_esketamine:
        return
    patient = prescription.patient
    if not patient.clinic.rems_certification.strip():
        raise ServiceError(
            {
                "care_setting": f"{patient.clinic} has no Spravato REMS certification on record: outpatient "
                "esketamine is given only in a REMS-certified setting (clinical-reference §1 setting). An "
                "administrator records it in the clinic's settings."
            }
        )
    today = now.astimezone(patient.zone).date()
    if patient.rems_enrolled_on is None or patient.rems_enrolled_on > today:
        raise ServiceError(
            {
                "care_setting": f"{patient.full_name} is not enrolled in the Spravato REMS: an outpatient "
                "esketamine session needs the enrolment first (clinical-reference §1 setting). Record the "
                "enrolment date on the patient's page, or choose the inpatient setting if the patient is an "
                "inpatient."
            }
        )


@transaction.atomic
def record_pre_dose_bp(
    *, session: InClinicSession, systolic: int, diastolic: int, taken_at: dt.datetime, now: dt.datetime | None = None
) -> SessionResult:
    """Record (or correct) the blood pressure before dosing; only before the first device."""
    now = now or timezone.now()
    session = _lock(session)
    if session.first_device_at is not None or session.status != Status.STARTED:
        raise ServiceError({"bp_before_systolic": "The dose is already recorded; the pre-dose reading can't change."})
    _not_future(taken_at, "bp_before_at", now)
    session.bp_before_systolic, session.bp_before_diastolic, session.bp_before_at = systolic, diastolic, taken_at
    _save(session)
    return SessionResult(session, [w for w in [bp_warning(session)] if w])


@transaction.atomic
def record_bp_decision(
    *,
    session: InClinicSession,
    decision: str,
    reason: str,
    by: Clinician,
    recorded_by: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> SessionResult:
    """Withhold or proceed (§1 bp_threshold). Withholding closes the session with no dose given."""
    now = now or timezone.now()
    session = _lock(session)
    if decision not in (Decision.WITHHELD, Decision.PROCEEDED):
        raise ServiceError({"bp_decision": "Choose whether to withhold the dose or proceed."})
    if session.bp_before_systolic is None:
        raise ServiceError({"bp_before_systolic": "Record the blood pressure before dosing first."})
    if not reason.strip():
        raise ServiceError({"bp_decision_reason": "Say why the dose is withheld or given."})
    if session.status != Status.STARTED or session.first_device_at is not None:
        raise ServiceError({"bp_decision": "The dose is already recorded or withheld; the decision can't change."})
    session.bp_decision, session.bp_decision_reason = decision, reason.strip()
    session.bp_decision_by, session.bp_decision_at = by, now
    if decision == Decision.WITHHELD:
        session.status = Status.WITHHELD
        event = record_dose(
            prescription=session.prescription,
            occurred_at=session.bp_before_at or now,
            reporter=DoseEvent.Reporter.CLINICIAN,
            recorded_by=recorded_by,
            outcome=DoseEvent.Outcome.SKIPPED,
            planned_dose=session.planned_dose,
            skip_reason=(
                f"Withheld at the clinic: blood pressure before dosing "
                f"{bp_text(session.bp_before_systolic, session.bp_before_diastolic)}. {reason.strip()}"
            )[:200],
            location=DoseEvent.Location.CLINIC,
            now=now,
        )
        _attach_event(session, event, now)
    _save(session)
    return SessionResult(session)


@transaction.atomic
def record_dosing(
    *,
    session: InClinicSession,
    first_device_at: dt.datetime,
    devices: int | None = None,
    dose_mg_per_kg: Any = None,
    infusion_minutes: int | None = None,
    lot_number: str = "",
    now: dt.datetime | None = None,
) -> SessionResult:
    """The dose given: esketamine devices (28 mg each) or IV ketamine mg/kg over so many minutes."""
    now = now or timezone.now()
    session = _lock(session)
    if session.status != Status.STARTED:
        raise ServiceError({"first_device_at": "This session is closed; its dose can't change."})
    if session.bp_before_systolic is None:
        raise ServiceError(
            {"bp_before_systolic": "Record the blood pressure before dosing first (the label asks for it every time)."}
        )
    if session.needs_bp_decision:
        raise ServiceError({"bp_decision": bp_warning(session)})
    _not_future(first_device_at, "first_device_at", now)
    if session.bp_before_at and first_device_at < session.bp_before_at:
        raise ServiceError({"first_device_at": "The first device must come after the blood pressure before dosing."})
    warnings: list[str] = []
    drug = session.prescription.drug
    if session.route == Route.NASAL:
        mg = clinical.get("ESK_MG_PER_DEVICE")
        if devices is None:
            raise ServiceError({"devices": f"Give the number of {mg} mg devices (2 = {2 * mg} mg, 3 = {3 * mg} mg)."})
        if dose_mg_per_kg is not None or infusion_minutes is not None:
            raise ServiceError({"dose_mg_per_kg": f"{drug} is dosed in devices, not mg/kg."})
        if drug.maximum is not None and devices * mg > drug.maximum:
            raise ServiceError(
                {"devices": f"{devices * mg} mg is above the maximum for {drug}: {drug.describe_limit()}."}
            )
        if devices * mg != session.prescription.dose:
            warnings.append(
                f"{devices * mg} mg given; the prescription is for {session.prescription.dose.normalize():f} mg."
            )
    else:
        weight = session.patient.weight_kg
        if weight is None:
            raise ServiceError({"dose_mg_per_kg": "Record the patient's weight first: IV ketamine is dosed per kg."})
        if dose_mg_per_kg is None:
            raise ServiceError({"dose_mg_per_kg": "Give the IV ketamine dose in mg/kg."})
        if not infusion_minutes:
            raise ServiceError({"infusion_minutes": "Give how many minutes the infusion ran."})
        if devices is not None:
            raise ServiceError({"devices": f"{drug} is dosed in mg/kg, not devices."})
        session.weight_kg = weight
        if Decimal(dose_mg_per_kg) > Decimal(str(clinical.get("KETAMINE_WARN_ABOVE_MG_PER_KG"))):
            warnings.append(
                f"{dose_mg_per_kg} mg/kg is above the {clinical.get('KETAMINE_WARN_ABOVE_MG_PER_KG')} mg/kg "
                "studied for depression."
            )
        if infusion_minutes < clinical.get("KETAMINE_WARN_INFUSION_UNDER_MINUTES"):
            warnings.append(
                f"An infusion of {infusion_minutes} min is shorter than the usual "
                f"{clinical.get('KETAMINE_WARN_INFUSION_UNDER_MINUTES')} min."
            )
    session.devices, session.dose_mg_per_kg, session.infusion_minutes = devices, dose_mg_per_kg, infusion_minutes
    session.first_device_at, session.lot_number = first_device_at, lot_number.strip()
    _save(session)
    return SessionResult(session, warnings)


@transaction.atomic
def record_monitoring(
    *, session: InClinicSession, values: Mapping[str, Any], now: dt.datetime | None = None
) -> SessionResult:
    """BP at ~40 min and at discharge, SpO2, sedation, dissociation, adverse events, REMS form."""
    now = now or timezone.now()
    session = _lock(session)
    _set(session, values, MONITORING_FIELDS)
    for name in ("bp_40min_at", "observation_started_at", "rems_form_submitted_at"):
        _not_future(getattr(session, name), name, now)
    _save(session)
    return SessionResult(session, _monitoring_warnings(session))


def _monitoring_warnings(session: InClinicSession) -> list[str]:
    warnings = []
    if session.bp_40min_at is not None and session.first_device_at is not None and not session.bp_40min_in_window:
        low, high = clinical.get("BP_40MIN_WINDOW_MINUTES")
        warnings.append(
            f"The ~40-minute blood pressure was taken outside {low}–{high} min after the first device; "
            "it does not count as the 40-minute reading."
        )
    return warnings


def _attach_event(session: InClinicSession, event: DoseEvent, now: dt.datetime) -> None:
    """Link the dose event, adopt the planned session it matched, and close a missed-session flag."""
    session.dose_event = event
    if session.planned_dose_id is None and event.planned_dose_id is not None:
        session.planned_dose_id = event.planned_dose_id
    if event.planned_dose_id is not None:
        note = "A session was recorded for this planned session."
        flag_service.answer_facts(
            patient_id=session.patient_id,
            keys=[missed_fact_key(event.planned_dose_id)],
            kinds=[FlagKind.ESK_SESSION_MISSED],
            note=note,
            resolved_note=f"Resolved automatically: every missed session behind this flag has been recorded. {note}",
            now=now,
        )


@transaction.atomic
def complete_session(
    *,
    session: InClinicSession,
    discharge_at: dt.datetime,
    recorded_by: AbstractBaseUser | None = None,
    monitoring: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> SessionResult:
    """Discharge the patient and record the dose given (a DoseEvent at the clinic).

    Early discharge and discharge before recovery are stored as they happened and come
    back as warnings; the ketamine sweep flags them.
    """
    now = now or timezone.now()
    if monitoring:
        record_monitoring(session=session, values=monitoring, now=now)
    session = _lock(session)
    if session.status != Status.STARTED:
        raise ServiceError({"discharge_at": "This session is already closed."})
    if session.first_device_at is None:
        raise ServiceError({"first_device_at": "Record the dose and the time of the first device before discharge."})
    _not_future(discharge_at, "discharge_at", now)
    session.discharge_at = discharge_at
    session.full_clean()  # discharge after the first device, with its own message
    event = record_dose(
        prescription=session.prescription,
        occurred_at=session.first_device_at,
        reporter=DoseEvent.Reporter.CLINICIAN,
        recorded_by=recorded_by,
        planned_dose=session.planned_dose,
        location=DoseEvent.Location.CLINIC,
        amount=session.dose_amount,
        note=f"In-clinic session: {session.dose_display}.",
        now=now,
    )
    session.status = Status.COMPLETED
    _attach_event(session, event, now)
    _save(session)
    return SessionResult(session, discharge_warnings(session) + _monitoring_warnings(session))


def discharge_warnings(session: InClinicSession) -> list[str]:
    """What the discharge did not meet (§1 discharge_rule, min_observation; §2 tracker defaults)."""
    warnings = []
    if session.discharged_early:
        warnings.append(
            f"Discharged after {session.observation_minutes} min of observation, before the minimum "
            f"({session.minimum_observation_minutes} min from the first device)."
        )
    if gaps := session.recovery_gaps():
        warnings.append("Discharged before recovery: " + "; ".join(gaps) + ".")
    if missing := session.missing_monitoring():
        warnings.append("Still missing: " + ", ".join(missing) + ".")
    return warnings


@transaction.atomic
def update_session(
    *,
    session: InClinicSession,
    values: Mapping[str, Any],
    by: Clinician,
    recorded_by: AbstractBaseUser | None = None,
    addendum_reason: str = "",
    now: dt.datetime | None = None,
) -> SessionResult:
    """Apply a form's changed fields step by step, in clinical order (the admin's one call).

    Pre-dose BP, then the decision, then the dose, then monitoring, then discharge: a
    single save can carry a whole session, and each step keeps its own checks. A signed-off
    record changes only with ``addendum_reason``: the change is kept as an addendum.
    """
    now = now or timezone.now()
    warnings: list[str] = []
    # The REMS form is often sent after sign-off, within 7 days (§1): that is not a change to the record.
    clinical_change = sorted(k for k in values if k != "rems_form_submitted_at")
    if clinical_change and _lock(session).signed_off_at is not None:
        if not addendum_reason.strip():
            signed = _lock(session).signed_off_at.astimezone(session.patient.zone)
            raise ServiceError(
                {
                    "addendum_reason": f"This session was signed off on {signed:%d %b %Y %H:%M} {signed.tzname()}: "
                    "say why it is being changed (kept as an addendum with your name and the time)."
                }
            )
        SessionAddendum.objects.create(
            session=session,
            reason=addendum_reason.strip(),
            changed_fields=clinical_change,
            recorded_by=recorded_by,
            created_at=now,
        )
    pre = {k: v for k, v in values.items() if k in PRE_DOSE_FIELDS}
    if pre:
        current = _lock(session)
        merged = {f: pre.get(f, getattr(current, f)) for f in PRE_DOSE_FIELDS}
        if merged["bp_before_systolic"] is None or merged["bp_before_diastolic"] is None:
            raise ServiceError({"bp_before_systolic": "Give both systolic and diastolic blood pressure before dosing."})
        warnings += record_pre_dose_bp(
            session=session,
            systolic=merged["bp_before_systolic"],
            diastolic=merged["bp_before_diastolic"],
            taken_at=merged["bp_before_at"] or now,
            now=now,
        ).warnings
    if values.get("bp_decision"):
        record_bp_decision(
            session=session,
            decision=values["bp_decision"],
            reason=values.get("bp_decision_reason") or _lock(session).bp_decision_reason,
            by=by,
            recorded_by=recorded_by,
            now=now,
        )
    dosing = {k: v for k, v in values.items() if k in DOSING_FIELDS}
    if dosing:
        current = _lock(session)
        merged = {f: dosing.get(f, getattr(current, f)) for f in DOSING_FIELDS}
        if merged["first_device_at"] is None:
            raise ServiceError({"first_device_at": "Give the time of the first device (or the infusion start)."})
        warnings += record_dosing(session=session, now=now, **merged).warnings
    if values.get("rems_form_submitted_at"):
        record_rems_form_submitted(session=session, submitted_at=values["rems_form_submitted_at"], now=now)
    monitoring = {k: v for k, v in values.items() if k in MONITORING_FIELDS}
    if values.get("discharge_at"):
        result = complete_session(
            session=session,
            discharge_at=values["discharge_at"],
            recorded_by=recorded_by,
            monitoring=monitoring,
            now=now,
        )
    elif monitoring:
        result = record_monitoring(session=session, values=monitoring, now=now)
    else:
        result = SessionResult(_lock(session))
    resolve_answered_flags(session=result.session, now=now)
    return SessionResult(result.session, warnings + result.warnings)


# What sign-off needs beyond the monitoring fields: the session is over (completed or withheld).
def sign_off_gaps(session: InClinicSession) -> list[str]:
    """What is still missing before the record can be signed off, in the nurse's words."""
    gaps = []
    if session.status == InClinicSession.Status.STARTED:
        gaps.append("the discharge (or the decision to withhold)")
    gaps += session.missing_monitoring()
    return gaps


@transaction.atomic
def sign_off_session(*, session: InClinicSession, by: Clinician, now: dt.datetime | None = None) -> InClinicSession:
    """Finish the record: only when every required field is in; afterwards only addenda change it."""
    now = now or timezone.now()
    current = _lock(session)
    if current.entered_in_error_at is not None:
        raise ServiceError("A session entered in error cannot be signed off.")
    if current.signed_off_at is not None:
        raise ServiceError("This session is already signed off.")
    if gaps := sign_off_gaps(current):
        raise ServiceError("The session cannot be signed off yet; still missing: " + "; ".join(gaps) + ".")
    current.signed_off_at, current.signed_off_by = now, by
    current._change_reason = "Signed off"
    _save(current)
    return current


def record_rems_form_submitted(*, session: InClinicSession, submitted_at: dt.datetime, now: dt.datetime) -> None:
    """§1 REMS: the outpatient Patient Monitoring Form was sent (answers esk.rems_form_overdue)."""
    _not_future(submitted_at, "rems_form_submitted_at", now)
    current = _lock(session)
    anchor = current.first_device_at or current.created_at
    if submitted_at < anchor:
        raise ServiceError({"rems_form_submitted_at": "The form cannot be sent before the session it reports."})
    current.rems_form_submitted_at = submitted_at
    current._change_reason = "REMS Patient Monitoring Form marked submitted"
    _save(current)


# Session flags a later record answers: the condition that answers it, and what the note says.
ANSWERED_BY: dict[str, tuple[Callable[[InClinicSession], bool], str]] = {
    FlagKind.ESK_MONITORING_INCOMPLETE: (lambda s: not s.missing_monitoring(), "the session record was completed"),
    FlagKind.ESK_BP_NO_DECISION: (lambda s: not s.needs_bp_decision, "a withhold/proceed decision was recorded"),
    FlagKind.ESK_REMS_FORM_OVERDUE: (
        lambda s: s.rems_form_submitted_at is not None,
        "the REMS Patient Monitoring Form was marked submitted",
    ),
}


def resolve_answered_flags(*, session: InClinicSession, now: dt.datetime) -> int:
    """Resolve this session's open flags that its record now answers, as the tracker, with a note.

    A "monitoring incomplete" warning must not stay on the worklist once the nurse has
    completed the record, as a late dose resolves its miss. Flags about what happened
    (early discharge, discharged before recovery) are never answered this way.
    """
    fresh = InClinicSession.objects.select_related("patient").get(pk=session.pk)
    open_flags = Flag.objects.filter(
        subject_type=ContentType.objects.get_for_model(InClinicSession),
        subject_id=session.pk,
        kind__in=list(ANSWERED_BY),
    ).exclude(status=Flag.Status.RESOLVED)
    resolved = 0
    for flag in open_flags:
        answered, what = ANSWERED_BY[flag.kind]
        if answered(fresh):
            local = now.astimezone(fresh.patient.zone)
            note = f"Resolved by the tracker: {what} ({local:%d %b %Y %H:%M} {local.tzname()})."
            flag_service.resolve_flag(flag=flag, by=None, note=note, now=now)
            resolved += 1
    return resolved
