"""Issue 13's prescribing dose checks (clinical-reference §1, §2, §6): one code path, tracker/dose_checks.py,
for the services and the API. Refusals name their field and reason; warnings save, are kept on the
prescription (``dose_warnings``), and show in the API output and on the timeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests import factories
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.dose_checks import dose_guidance, esketamine_indication, review_dose, suggested_indications
from tracker.models import Prescription
from tracker.services.measurements import record_weight
from tracker.services.prescriptions import ScheduleSpec, change_dose, prescribe, reschedule
from tracker.timeline import patient_timeline

pytestmark = pytest.mark.django_db

START = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 1, 6, 0, tzinfo=dt.UTC)

WEIGHT_FIRST = "Record the patient's weight first: IV ketamine is dosed in mg/kg (clinical-reference §2)."
SERTRALINE_ABOVE_USUAL = (
    "250 mg a day (2 doses of 125 mg) is above the usual range for Sertraline: 50–200 mg a day; "
    "the label maximum is 200 mg per local calendar day (clinical-reference §6)."
)
VENLAFAXINE_ABOVE_USUAL = (
    "300 mg a day is above the usual range for Venlafaxine: 75–225 mg a day; "
    "the label maximum is 375 mg per local calendar day (clinical-reference §6)."
)
CITALOPRAM_OVER_60 = (
    "30 mg is above the maximum for Citalopram for a patient over 60: 20 mg per local calendar day "
    "(label: 20 mg a day above age 60, 40 mg otherwise; this patient is 67)."
)
UNDER_18 = "Esketamine (nasal) is not approved for patients under 18 (clinical-reference §1); this patient is 16."
TRD_DAY1 = (
    "The first Esketamine (nasal) session for treatment-resistant depression is 56 mg on day 1 "
    "(clinical-reference §1); this course starts at 84 mg."
)
MDD_SI_DAY1 = (
    "The first Esketamine (nasal) session for major depressive disorder with acute suicidal ideation or "
    "behaviour is 84 mg on day 1 (clinical-reference §1); this course starts at 56 mg."
)
ESK_OFF_LABEL = (
    "Esketamine (nasal) is approved for treatment-resistant depression or major depressive disorder with "
    "acute suicidal ideation or behaviour (clinical-reference §1); this prescription gives "
    '"Bipolar depression". Record the indication, or note why it is used off-label.'
)
KETAMINE_ABOVE = (
    "1 mg/kg (70 mg at 70 kg) is above the 0.75 mg/kg studied for depression (clinical-reference §2); "
    "0.5 mg/kg is the usual dose."
)


def born(years: int) -> dt.date:
    return START.replace(year=START.year - years)


def rx_for(patient, clinician, name, dose, *, times=("08:00",), **kwargs) -> Prescription:
    return prescribe(
        patient=patient,
        drug=factories.drug(name),
        dose=Decimal(dose),
        start_date=START,
        prescriber=clinician,
        schedules=[ScheduleSpec(times_of_day=times)],
        now=NOW,
        **kwargs,
    )


def refusal(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def weigh(patient, clinician, kg="70") -> None:
    record_weight(
        patient=patient,
        weight_kg=Decimal(kg),
        measured_at=NOW - dt.timedelta(days=1),
        recorded_by=clinician.user,
        now=NOW,
    )


# --- Through the services -----------------------------------------------------------------------


def test_within_the_usual_range_saves_with_no_warning(patient, clinician):
    assert rx_for(patient, clinician, "sertraline", "100").dose_warnings == []


def test_above_usual_range_saves_and_keeps_the_warning(patient, clinician):
    rx = rx_for(patient, clinician, "venlafaxine", "300")
    rx.refresh_from_db()
    assert rx.dose_warnings == [VENLAFAXINE_ABOVE_USUAL]


def test_usual_range_is_judged_on_the_days_total(patient, clinician):
    # 2 × 100 mg is the usual 200 mg; 2 × 125 mg = 250 mg is above the maximum: refused by the daily-total check.
    assert rx_for(patient, clinician, "sertraline", "100", times=("08:00", "20:00")).dose_warnings == []
    review = review_dose(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("125"),
        start_date=START,
        first_course=True,
        doses_per_day=2,
    )
    assert review.warnings == [SERTRALINE_ABOVE_USUAL]


def test_dose_change_above_usual_keeps_its_warning_on_the_new_version(patient, clinician):
    rx = rx_for(patient, clinician, "venlafaxine", "150")
    new = change_dose(
        prescription=rx,
        new_dose=Decimal("300"),
        effective_date=START + dt.timedelta(days=14),
        reason="Partial response",
        prescriber=clinician,
        now=NOW,
    )
    assert new.dose_warnings == [VENLAFAXINE_ABOVE_USUAL]
    assert Prescription.objects.get(pk=rx.pk).dose_warnings == []


def test_reschedule_to_more_doses_adds_the_warning(patient, clinician):
    rx = rx_for(patient, clinician, "venlafaxine", "150")
    reschedule(prescription=rx, schedules=[ScheduleSpec(times_of_day=("08:00", "20:00"))], reason="Split dose", now=NOW)
    rx.refresh_from_db()
    assert rx.dose_warnings == [VENLAFAXINE_ABOVE_USUAL.replace("300 mg a day", "300 mg a day (2 doses of 150 mg)")]


def test_above_the_maximum_is_refused_naming_it(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        rx_for(patient, clinician, "sertraline", "250")
    assert refusal(excinfo) == {"dose": ["250 mg is above the maximum for Sertraline: 200 mg per local calendar day."]}


def test_age_dependent_ceiling_names_the_age_rule(clinic, clinician):
    older = factories.PatientFactory(clinic=clinic, date_of_birth=born(67))
    with pytest.raises(ValidationError) as excinfo:
        rx_for(older, clinician, "citalopram", "30")
    assert refusal(excinfo) == {"dose": [CITALOPRAM_OVER_60]}
    assert not Prescription.objects.exists()


def test_wrong_unit_is_refused_naming_the_drugs_unit(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        rx_for(patient, clinician, "sertraline", "1", dose_unit="mg/kg")
    assert refusal(excinfo) == {"dose_unit": ["Sertraline is dosed in mg; mg/kg does not fit this drug."]}
    assert rx_for(patient, clinician, "sertraline", "50", dose_unit="mg").dose_unit == "mg"


def test_esketamine_refused_under_18(clinic, clinician):
    minor = factories.PatientFactory(clinic=clinic, date_of_birth=born(16))
    with pytest.raises(ValidationError) as excinfo:
        rx_for(minor, clinician, "esketamine", "56", indication="Treatment-resistant depression")
    assert refusal(excinfo) == {"patient": [UNDER_18]}


def test_esketamine_accepted_at_18(clinic, clinician):
    adult = factories.PatientFactory(clinic=clinic, date_of_birth=born(18))
    assert rx_for(adult, clinician, "esketamine", "56", indication="Treatment-resistant depression").pk


def test_esketamine_other_indication_warns_not_refuses(patient, clinician):
    rx = rx_for(patient, clinician, "esketamine", "56", indication="Bipolar depression")
    assert rx.dose_warnings == [ESK_OFF_LABEL]


@pytest.mark.parametrize(
    ("indication", "dose", "warnings"),
    [
        ("Treatment-resistant depression", "56", []),
        ("TRD, third trial failed", "84", [TRD_DAY1]),
        ("Major depressive disorder with acute suicidal ideation or behaviour", "84", []),
        ("MDD, suicidal ideation", "56", [MDD_SI_DAY1]),
    ],
)
def test_esketamine_day1_dose_per_indication_warns(patient, clinician, indication, dose, warnings):
    assert rx_for(patient, clinician, "esketamine", dose, indication=indication).dose_warnings == warnings


def test_esketamine_day1_check_is_for_a_new_course_only(patient, clinician):
    rx = rx_for(patient, clinician, "esketamine", "56", indication="Treatment-resistant depression")
    new = change_dose(
        prescription=rx,
        new_dose=Decimal("84"),
        effective_date=START + dt.timedelta(days=7),
        reason="Partial response",
        prescriber=clinician,
        now=NOW,
    )
    assert new.dose_warnings == []


def test_iv_ketamine_needs_a_recorded_weight(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        rx_for(patient, clinician, "ketamine", "0.5")
    assert refusal(excinfo) == {"patient": [WEIGHT_FIRST]}
    weigh(patient, clinician)
    rx = rx_for(patient, clinician, "ketamine", "0.5")
    assert (rx.dose_unit, rx.dose_warnings) == ("mg/kg", [])


def test_iv_ketamine_above_075_mg_per_kg_warns(patient, clinician):
    weigh(patient, clinician)
    assert rx_for(patient, clinician, "ketamine", "1.0").dose_warnings == [KETAMINE_ABOVE]


def test_refusals_are_all_reported_at_once(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        rx_for(patient, clinician, "sertraline", "250", route="iv")
    assert set(refusal(excinfo)) == {"dose", "route"}


def test_dose_guidance_lines():
    assert dose_guidance(factories.drug("sertraline")) == "mg per dose; usual 50–200 mg a day, maximum 200 mg a day"
    assert dose_guidance(factories.drug("esketamine")) == (
        "mg per session; usual 56–84 mg, maximum 84 mg per session; "
        "day 1: 56 mg (TRD), 84 mg (MDD with suicidal ideation)"
    )
    assert dose_guidance(factories.drug("ketamine")) == (
        "mg/kg per infusion; usual 0.5 mg/kg, warning above 0.75 mg/kg; needs a recorded weight"
    )


def test_suggested_indications_are_the_esketamine_label_ones():
    assert suggested_indications(factories.drug("esketamine")) == [
        "Treatment-resistant depression",
        "Major depressive disorder with acute suicidal ideation or behaviour",
    ]
    assert suggested_indications(factories.drug("sertraline")) == []
    # Either label text, typed as offered, is recognised (no indication warning).
    for indication in suggested_indications(factories.drug("esketamine")):
        assert esketamine_indication(indication) is not None


def test_dose_guidance_shows_the_patients_weight_for_ketamine(patient, clinician):
    weigh(patient, clinician, "72.5")
    assert dose_guidance(factories.drug("ketamine"), patient) == (
        "mg/kg per infusion; usual 0.5 mg/kg, warning above 0.75 mg/kg; weight 72.5 kg"
    )


def test_dose_guidance_shows_the_age_lowered_maximum(clinic):
    older = factories.PatientFactory(clinic=clinic, date_of_birth=born(67))
    assert dose_guidance(factories.drug("citalopram"), older, START) == (
        "mg per dose; usual 20–40 mg a day, maximum 20 mg a day (over 60)"
    )


def test_warnings_show_on_the_timeline(patient, clinician):
    rx_for(patient, clinician, "venlafaxine", "300", indication="Major depressive disorder")
    timeline = patient_timeline(patient, now=NOW + dt.timedelta(days=2))
    (event,) = [e for e in timeline.events if e.kind == "prescription"]
    assert event.detail == f"Major depressive disorder Warning: {VENLAFAXINE_ABOVE_USUAL}"


# --- Through the API ----------------------------------------------------------------------------


def post_prescription(world: World, **body):
    defaults = {
        "patient": world.patient_a.pk,
        "drug": factories.drug("sertraline").pk,
        "dose": "50",
        "start_date": timezone.localdate().isoformat(),
        "schedules": [{"times_of_day": ["08:00"]}],
    }
    return client_for(world, "clinician").post("/api/prescriptions/", {**defaults, **body}, format="json")


def test_api_above_usual_saves_and_returns_the_warning(world):
    response = post_prescription(world, drug=factories.drug("venlafaxine").pk, dose="300")
    assert response.status_code == 201, response.json()
    assert response.json()["dose_warnings"] == [VENLAFAXINE_ABOVE_USUAL]
    detail = client_for(world, "clinician").get(f"/api/prescriptions/{response.json()['id']}/").json()
    assert detail["dose_warnings"] == [VENLAFAXINE_ABOVE_USUAL]


def test_api_dose_warnings_are_read_only(world):
    response = post_prescription(world, dose_warnings=["made up"])
    assert response.status_code == 201
    assert response.json()["dose_warnings"] == []


def test_api_wrong_unit_is_refused_not_stored_as_mg(world):
    response = post_prescription(world, dose_unit="mg/kg", dose="1")
    assert response.status_code == 400
    assert response.json()["dose_unit"] == ["Sertraline is dosed in mg; mg/kg does not fit this drug."]
    ok = post_prescription(world, drug=factories.drug("ketamine").pk, dose="0.5", dose_unit="mg/kg", route="iv")
    assert ok.status_code == 201, ok.json()  # patient A has a recorded weight
    assert ok.json()["dose_unit"] == "mg/kg"


def test_api_above_maximum_names_the_age_rule(world):
    world.patient_a.date_of_birth = timezone.localdate().replace(year=timezone.localdate().year - 67)
    world.patient_a.save(update_fields=["date_of_birth"])
    response = post_prescription(world, drug=factories.drug("citalopram").pk, dose="30")
    assert response.status_code == 400
    assert response.json()["dose"] == [CITALOPRAM_OVER_60]


def test_api_esketamine_refused_for_a_minor(world):
    world.patient_a.date_of_birth = timezone.localdate().replace(year=timezone.localdate().year - 16)
    world.patient_a.save(update_fields=["date_of_birth"])
    response = post_prescription(
        world, drug=factories.drug("esketamine").pk, dose="56", route="nasal", indication="TRD"
    )
    assert response.status_code == 400
    assert response.json()["patient"] == [UNDER_18]


def test_api_ketamine_without_weight_is_refused(world):
    response = post_prescription(world, patient=world.patient_b.pk, drug=factories.drug("ketamine").pk, dose="0.5")
    assert response.status_code == 400
    assert response.json()["patient"] == [WEIGHT_FIRST]


def test_api_esketamine_day1_and_indication_warnings(world):
    esk = factories.drug("esketamine").pk
    day1 = post_prescription(world, drug=esk, dose="84", indication="Treatment-resistant depression")
    assert day1.status_code == 201, day1.json()
    assert day1.json()["dose_warnings"] == [TRD_DAY1]
    other = post_prescription(world, drug=esk, dose="56", indication="Bipolar depression")
    assert other.json()["dose_warnings"] == [ESK_OFF_LABEL]
