"""Questionnaires and side-effect reports from patients and clinicians.

A PHQ-9 with item 9 above 0 raises its urgent flag in the same transaction as the answers
(clinical-reference §4 item9): if the save succeeds, the flag exists. Everything else
about scores and side effects is judged by the sweeps in ``tracker.rules``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from tracker import clinical, scales, side_effect_catalogue
from tracker.models import Assessment, FlagKind, Patient, Prescription, Severity, SideEffectReport
from tracker.services import flags as flag_service
from tracker.services.errors import ServiceError
from tracker.services.measurements import answer_monitoring

PATIENT_INSTRUMENTS = {"phq9", "gad7", "fibser", "asex", "pcl5"}


@dataclass(frozen=True)
class Submitted:
    assessment: Assessment
    suicidality_flagged: bool


def suicidality_key(assessment_id: int) -> str:
    return f"{FlagKind.SCALE_SUICIDALITY}:assessment:{assessment_id}"


def item9_positive(instrument: str, answers: Sequence[int]) -> bool:
    """§4 item9: a PHQ-9 whose question 9 is at or above SUICIDALITY_ITEM9_MIN (any positive answer).

    The one definition: the save flags it, and the portal shows crisis guidance for it.
    """
    return instrument == scales.PHQ9.code and answers[scales.PHQ9_SUICIDALITY_ITEM] >= clinical.get(
        "SUICIDALITY_ITEM9_MIN"
    )


@transaction.atomic
def submit_assessment(
    *,
    patient: Patient,
    instrument: str,
    answers: Sequence[int],
    source: str,
    recorded_by: AbstractBaseUser | None = None,
    completed_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Submitted:
    """Store a completed questionnaire; a positive PHQ-9 item 9 flags at once."""
    now = now or timezone.now()
    completed_at = completed_at or now
    if completed_at > now + dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")):
        raise ServiceError({"completed_at": "That time is in the future."})
    if source == Assessment.Source.PATIENT and instrument not in PATIENT_INSTRUMENTS:
        raise ServiceError({"instrument": f"{scales.get_scale(instrument).name} is rated by a clinician."})
    values = scales.validate_answers(instrument, list(answers))
    assessment = Assessment(
        patient=patient,
        instrument=instrument,
        answers=values,
        completed_at=completed_at,
        source=source,
        recorded_by=recorded_by,
        created_at=now,
    )
    assessment.save()
    if instrument == "fibser":  # §5 FIBSER schedule: a rating due answers its overdue flag
        answer_monitoring(patient=patient, measure="fibser", measured_at=completed_at, now=now)
    flagged = False
    if item9_positive(instrument, values):
        answer = dict(scales.PHQ9.options)[values[scales.PHQ9_SUICIDALITY_ITEM]]
        flagged = flag_service.raise_flag(
            patient=patient,
            kind=FlagKind.SCALE_SUICIDALITY,
            severity=Severity.URGENT,
            dedup_key=suicidality_key(assessment.pk),
            message=(
                f"PHQ-9 question 9 (thoughts of being better off dead or of self-harm) answered "
                f'"{answer}" on {completed_at:%d %b %Y}; total {assessment.total}.'
            ),
            action="Contact the patient today for a clinical risk assessment (for example a C-SSRS follow-up).",
            raised_at=completed_at,
            subject=assessment,
        )
    return Submitted(assessment=assessment, suicidality_flagged=flagged)


@dataclass(frozen=True)
class EffectReport:
    effect: str
    severity: str
    onset_date: dt.date | None = None
    description: str = ""
    prescription_id: int | None = None


def _check_effect(patient: Patient, report: EffectReport) -> None:
    if report.effect != side_effect_catalogue.OTHER and report.effect not in side_effect_catalogue.BY_CODE:
        raise ServiceError({"effect": "Choose a side effect from the list, or 'Something else' and describe it."})
    if report.effect == side_effect_catalogue.OTHER and not report.description.strip():
        raise ServiceError({"description": "Please describe the side effect in your own words."})
    if report.severity not in SideEffectReport.Severity.values:
        raise ServiceError({"severity": "Choose how strong the side effect is: mild, moderate or severe."})
    if (
        report.prescription_id is not None
        and not Prescription.objects.filter(pk=report.prescription_id, patient=patient).exists()
    ):
        raise ServiceError({"prescription": "That medicine is not one of yours."})


@transaction.atomic
def report_side_effects(
    *,
    patient: Patient,
    effects: Sequence[EffectReport],
    recorded_by: AbstractBaseUser | None = None,
    checkin: Assessment | None = None,
    now: dt.datetime | None = None,
) -> list[SideEffectReport]:
    """Store side effects as the patient describes them; the sweep judges severity and persistence."""
    now = now or timezone.now()
    for report in effects:
        _check_effect(patient, report)
        if report.onset_date and report.onset_date > now.astimezone(patient.zone).date():
            raise ServiceError({"onset_date": "The day it started cannot be in the future."})
    rows = [
        SideEffectReport(
            patient=patient,
            prescription_id=r.prescription_id,
            effect=r.effect,
            description=r.description.strip(),
            severity=r.severity,
            onset_date=r.onset_date,
            reported_at=now,
            checkin=checkin,
            recorded_by=recorded_by,
            created_at=now,
        )
        for r in effects
    ]
    for row in rows:
        row.save()
    return rows


@transaction.atomic
def submit_checkin(
    *,
    patient: Patient,
    fibser_answers: Sequence[int],
    effects: Sequence[EffectReport],
    recorded_by: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> tuple[Assessment, list[SideEffectReport]]:
    """The weekly check-in: FIBSER (frequency, intensity, burden) and the effects present."""
    submitted = submit_assessment(
        patient=patient,
        instrument=scales.FIBSER.code,
        answers=fibser_answers,
        source=Assessment.Source.PATIENT,
        recorded_by=recorded_by,
        now=now,
    )
    reports = report_side_effects(
        patient=patient, effects=effects, recorded_by=recorded_by, checkin=submitted.assessment, now=now
    )
    return submitted.assessment, reports
