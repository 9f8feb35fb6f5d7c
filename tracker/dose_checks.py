"""The prescribing dose checks of clinical-reference §1, §2 and §6, in one place.

Pure functions over a patient, a drug and a dose: no database writes. The services
(``tracker.services.prescriptions``), and through them the admin and the API, call
``review_dose``; the model's ``clean()`` calls ``limit_errors`` as its guard. Errors refuse
(only where the label refuses or forbids); warnings save and are kept on the prescription
(``Prescription.dose_warnings``). The tracker supports clinicians; it never decides for them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils import timezone

from tracker import clinical
from tracker.models.drugs import DoseBasis, DoseUnit

if TYPE_CHECKING:
    from tracker.models.drugs import Drug
    from tracker.models.patients import Patient


@dataclass
class DoseReview:
    """What the checks found: ``errors`` refuse (field name -> message), ``warnings`` save."""

    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _amount(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}"


def _per(drug: Drug) -> str:
    """'a day' or 'per session', for a drug's dose basis."""
    return "a day" if drug.dose_basis == DoseBasis.DAY else "per session"


def _age(patient: Patient | None, on: dt.date | None) -> int | None:
    if patient is None or on is None or patient.date_of_birth is None:
        return None
    return patient.age_on(on)


def patient_maximum(drug: Drug, patient: Patient | None, on: dt.date | None) -> tuple[Decimal | None, str]:
    """The label maximum for this patient on ``on`` and how to name it in a message.

    §6: the maximum is lowered for age where the label says so (citalopram 20 mg above 60), and
    the message then names the age rule: "Citalopram for a patient over 60: 20 mg per local calendar
    day (label: 20 mg a day above age 60, 40 mg otherwise; this patient is 67)". Otherwise
    "Sertraline: 200 mg per local calendar day". Use as "... above the maximum for {text}."
    """
    age = _age(patient, on)
    rule = clinical.age_adjusted_rule(drug.name)
    lowered = clinical.age_adjusted_maximum(drug.name, age)
    if rule is not None and lowered is not None:
        over_age, _ = rule
        usual = "" if drug.maximum is None else f", {_amount(drug.maximum)} {drug.dose_unit} otherwise"
        return lowered, (
            f"{drug} for a patient over {over_age}: {drug.describe_limit(lowered)} "
            f"(label: {_amount(lowered)} {drug.dose_unit} {_per(drug)} above age {over_age}{usual}; "
            f"this patient is {age})"
        )
    if drug.maximum is None:
        return None, str(drug)
    return drug.maximum, f"{drug}: {drug.describe_limit()}"


def limit_errors(
    *, patient: Patient | None, drug: Drug, dose: Decimal | None, dose_unit: str | None, start_date: dt.date | None
) -> dict[str, str]:
    """§6 refusals: a unit that does not fit the drug, or a dose above the label maximum."""
    errors: dict[str, str] = {}
    if dose_unit and dose_unit != drug.dose_unit:
        errors["dose_unit"] = f"{drug} is dosed in {drug.dose_unit}; {dose_unit} does not fit this drug."
    maximum, text = patient_maximum(drug, patient, start_date)
    if dose is not None and maximum is not None and dose > maximum:
        errors["dose"] = f"{_amount(dose)} {drug.dose_unit} is above the maximum for {text}."
    return errors


def esketamine_indication(indication: str) -> str | None:
    """[P] ESK_INDICATION_WORDS: "trd", "mdd_si" or None for a free-text indication."""
    text = (indication or "").lower()
    for key, words in clinical.get("ESK_INDICATION_WORDS").items():
        if any(re.search(rf"\b{re.escape(word)}", text) for word in words):
            return key
    return None


def suggested_indications(drug: Drug) -> list[str]:
    """The label indications to offer beside the free-text indication field (§1 esketamine), else none."""
    return list(clinical.get("ESK_INDICATIONS").values()) if drug.is_esketamine else []


def review_dose(
    *,
    patient: Patient,
    drug: Drug,
    dose: Decimal,
    dose_unit: str | None = None,
    indication: str = "",
    start_date: dt.date,
    first_course: bool,
    doses_per_day: int = 1,
) -> DoseReview:
    """Every prescribing check of §1, §2 and §6 for one dose of ``drug`` for ``patient``.

    ``dose_unit`` None means the drug's own unit. ``doses_per_day`` is the day's scheduled doses
    (for the usual-range warning on drugs dosed per day). ``first_course`` is True for a new course
    (the esketamine day-1 check), False for a dose change.
    """
    review = DoseReview(
        errors=limit_errors(patient=patient, drug=drug, dose=dose, dose_unit=dose_unit, start_date=start_date)
    )
    age = _age(patient, start_date)

    # §1 indication: esketamine is not approved under 18.
    minimum_age = clinical.minimum_age(drug.name)
    if minimum_age is not None and age is not None and age < minimum_age:
        review.errors["patient"] = (
            f"{drug} is not approved for patients under {minimum_age} (clinical-reference §1); this patient is {age}."
        )

    # §2 tracker defaults: weight is required for a dose in mg/kg (IV ketamine).
    if drug.dose_unit == DoseUnit.MG_PER_KG and patient.weight_kg is None:
        review.errors["patient"] = (
            "Record the patient's weight first: IV ketamine is dosed in mg/kg (clinical-reference §2)."
        )

    if "dose" in review.errors or dose is None:
        return review

    if drug.dose_unit == DoseUnit.MG_PER_KG:
        # §2 tracker defaults: warn above 0.75 mg/kg (the studied range for depression).
        ceiling = Decimal(str(clinical.get("KETAMINE_WARN_ABOVE_MG_PER_KG")))
        if dose > ceiling:
            weight = (
                f" ({_amount(dose * patient.weight_kg)} mg at {_amount(patient.weight_kg)} kg)"
                if patient.weight_kg
                else ""
            )
            review.warnings.append(
                f"{_amount(dose)} mg/kg{weight} is above the {_amount(ceiling)} mg/kg studied for depression "
                f"(clinical-reference §2); {_amount(drug.usual_min)} mg/kg is the usual dose."
            )
    else:
        # §6: above the usual range saves with a warning.
        per_day = max(doses_per_day, 1) if drug.dose_basis == DoseBasis.DAY else 1
        total = dose * per_day
        if total > drug.usual_max:
            amount = f"{_amount(total)} {drug.dose_unit} {_per(drug)}"
            if per_day > 1:
                amount += f" ({per_day} doses of {_amount(dose)} {drug.dose_unit})"
            limit = "" if drug.maximum is None else f"; the label maximum is {drug.describe_limit()}"
            review.warnings.append(
                f"{amount} is above the usual range for {drug}: "
                f"{_amount(drug.usual_min)}–{_amount(drug.usual_max)} {drug.dose_unit} {_per(drug)}{limit} "
                "(clinical-reference §6)."
            )

    if drug.is_esketamine:
        _esketamine_indication_checks(review, drug=drug, dose=dose, indication=indication, first_course=first_course)
    return review


def _esketamine_indication_checks(
    review: DoseReview, *, drug: Drug, dose: Decimal, indication: str, first_course: bool
) -> None:
    """§1 indication (a warning when neither label indication) and §1 day-1 dose (a new course)."""
    labels = clinical.get("ESK_INDICATIONS")
    kind = esketamine_indication(indication)
    if kind is None:
        written = f'"{indication.strip()}"' if indication.strip() else "no indication"
        review.warnings.append(
            f"{drug} is approved for {labels['trd'].lower()} or {labels['mdd_si'].lower()} (clinical-reference §1); "
            f"this prescription gives {written}. Record the indication, or note why it is used off-label."
        )
        return
    if not first_course:
        return
    day1 = Decimal(str(clinical.get("ESK_DAY1_DOSE_MG")[kind]))
    if dose != day1:
        review.warnings.append(
            f"The first {drug} session for {labels[kind].lower()} is {_amount(day1)} mg on day 1 "
            f"(clinical-reference §1); this course starts at {_amount(dose)} mg."
        )


def dose_guidance(drug: Drug, patient: Patient | None = None, on: dt.date | None = None) -> str:
    """A line to show beside the dose field: the unit, the usual range and the maximum.

    "mg per dose; usual 50–200 mg a day, maximum 200 mg a day";
    "mg per session; usual 56–84 mg, maximum 84 mg per session; day 1: 56 mg (TRD), 84 mg (MDD with
    suicidal ideation)"; "mg/kg per infusion; usual 0.5 mg/kg, warning above 0.75 mg/kg; needs a
    recorded weight". With a patient, the age-lowered maximum (citalopram over 60) is the one shown.
    """
    unit = drug.dose_unit
    if unit == DoseUnit.MG_PER_KG:
        ceiling = _amount(Decimal(str(clinical.get("KETAMINE_WARN_ABOVE_MG_PER_KG"))))
        text = f"{unit} per infusion; usual {_amount(drug.usual_min)} {unit}, warning above {ceiling} {unit}"
        if patient is not None and patient.weight_kg is not None:
            return f"{text}; weight {_amount(patient.weight_kg)} kg"
        return f"{text}; needs a recorded weight"
    if drug.dose_basis == DoseBasis.DAY:
        text = f"{unit} per dose; usual {_amount(drug.usual_min)}–{_amount(drug.usual_max)} {unit} a day"
    else:
        text = f"{unit} per session; usual {_amount(drug.usual_min)}–{_amount(drug.usual_max)} {unit}"
    if on is None:
        on = timezone.localdate(timezone=patient.zone) if patient is not None else timezone.localdate()
    maximum, _ = patient_maximum(drug, patient, on)
    if maximum is not None:
        text += f", maximum {_amount(maximum)} {unit} {_per(drug)}"
        rule = clinical.age_adjusted_rule(drug.name)
        if rule is not None and maximum != drug.maximum:
            text += f" (over {rule[0]})"
    if drug.is_esketamine:
        day1 = clinical.get("ESK_DAY1_DOSE_MG")
        text += f"; day 1: {day1['trd']} {unit} (TRD), {day1['mdd_si']} {unit} (MDD with suicidal ideation)"
    return text
