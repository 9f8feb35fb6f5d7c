"""Validation a clinician sees: full_clean() and the prescribing service refuse bad input
with a message that says what is wrong (clinical-reference §6 limits, §7 schedules)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests import factories
from tracker.models import DoseSchedule, Patient, PlannedDose, Prescription
from tracker.services.prescriptions import ScheduleSpec, prescribe

pytestmark = pytest.mark.django_db

START = dt.date(2025, 3, 3)
NOW = dt.datetime(2025, 3, 3, 7, 0, tzinfo=dt.UTC)
TIMES_FORMAT_MESSAGE = 'Write each time as HH:MM on a 24-hour clock, e.g. "08:00".'


def _prescribe(patient, clinician, drug_name, dose, **kwargs):
    return prescribe(
        patient=patient,
        drug=factories.drug(drug_name),
        dose=Decimal(dose),
        start_date=START,
        prescriber=clinician,
        now=NOW,
        **kwargs,
    )


def _born_years_before(years: int, *, days_after: int = 0) -> dt.date:
    """A date of birth making the patient ``years`` old on START (plus days_after days younger)."""
    return START.replace(year=START.year - years) + dt.timedelta(days=days_after)


def _refusal(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# --- Dose against the drug's maximum ----------------------------------------------------


def test_dose_above_the_maximum_is_refused_naming_the_limit(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "250")
    assert _refusal(excinfo)["dose"] == ["250 mg is above the maximum for Sertraline: 200 mg per local calendar day."]
    assert not Prescription.objects.filter(patient=patient).exists()


def test_dose_at_the_maximum_is_accepted(patient, clinician):
    rx = _prescribe(patient, clinician, "sertraline", "200")
    assert rx.pk and rx.dose == Decimal("200")


def test_fractional_dose_just_above_the_maximum_is_refused(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "escitalopram", "20.5")
    assert _refusal(excinfo)["dose"] == ["20.5 mg is above the maximum for Escitalopram: 20 mg per local calendar day."]


def test_esketamine_limit_is_per_session(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "esketamine", "112")
    assert _refusal(excinfo)["dose"] == [
        "112 mg is above the maximum for Esketamine (nasal): 84 mg per clinic session."
    ]
    assert _prescribe(patient, clinician, "esketamine", "84").route == "nasal"


def test_zero_dose_is_refused_by_full_clean(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "0")
    assert _refusal(excinfo)["dose"] == ["The dose must be more than 0."]
    assert not Prescription.objects.exists()


# --- Citalopram: age-adjusted maximum (§6: 20 mg if age > 60) ----------------------------


def test_citalopram_above_20_mg_refused_over_60(clinic, clinician):
    older = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(61))
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(older, clinician, "citalopram", "30")
    assert _refusal(excinfo)["dose"] == [
        "30 mg is above the maximum for Citalopram for a patient over 60: 20 mg per local calendar day "
        "(label: 20 mg a day above age 60, 40 mg otherwise; this patient is 61)."
    ]


def test_citalopram_20_mg_accepted_over_60(clinic, clinician):
    older = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(75))
    assert _prescribe(older, clinician, "citalopram", "20").pk


def test_citalopram_40_mg_accepted_at_45(clinic, clinician):
    adult = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(45))
    assert _prescribe(adult, clinician, "citalopram", "40").dose == Decimal("40")


def test_citalopram_above_40_mg_refused_at_45(clinic, clinician):
    adult = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(45))
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(adult, clinician, "citalopram", "60")
    assert _refusal(excinfo)["dose"] == ["60 mg is above the maximum for Citalopram: 40 mg per local calendar day."]


def test_citalopram_age_limit_starts_after_the_60th_year(clinic, clinician):
    # Aged exactly 60 on the start date: "> 60" does not apply yet.
    sixty = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(60))
    assert _prescribe(sixty, clinician, "citalopram", "40").pk
    # The day before their 61st birthday they are still 60; on it they are 61.
    almost = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(61, days_after=1))
    assert _prescribe(almost, clinician, "citalopram", "40").pk
    birthday = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(61))
    with pytest.raises(ValidationError):
        _prescribe(birthday, clinician, "citalopram", "40")


def test_age_limit_applies_to_citalopram_only(clinic, clinician):
    older = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(80))
    assert _prescribe(older, clinician, "escitalopram", "20").pk


def test_age_rule_follows_the_clinic_override(settings, clinic, clinician):
    settings.TRACKER_CLINICAL_OVERRIDES = {"AGE_ADJUSTED_MAXIMUM": {"citalopram": [65, 20]}}
    sixty_two = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(62))
    assert _prescribe(sixty_two, clinician, "citalopram", "40").pk
    sixty_six = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(66))
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(sixty_six, clinician, "citalopram", "40")
    assert _refusal(excinfo)["dose"] == [
        "40 mg is above the maximum for Citalopram for a patient over 65: 20 mg per local calendar day "
        "(label: 20 mg a day above age 65, 40 mg otherwise; this patient is 66)."
    ]


# --- Unit and route ---------------------------------------------------------------------


def test_unit_that_does_not_fit_the_drug_is_refused(patient, clinician):
    rx = Prescription(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("1"),
        dose_unit="mg/kg",
        route="oral",
        start_date=START,
        prescriber=clinician,
    )
    with pytest.raises(ValidationError) as excinfo:
        rx.full_clean()
    assert _refusal(excinfo)["dose_unit"] == ["Sertraline is dosed in mg; mg/kg does not fit this drug."]


def test_ketamine_is_dosed_in_mg_per_kg_with_no_label_maximum(patient, clinician):
    patient.weight_kg = Decimal("70")  # §2: IV ketamine needs a recorded weight (tests/test_dose_checks.py)
    patient.save(update_fields=["weight_kg"])
    rx = _prescribe(patient, clinician, "ketamine", "1.0")
    assert (rx.dose_unit, rx.route) == ("mg/kg", "iv")
    wrong_unit = Prescription(
        patient=patient,
        drug=factories.drug("ketamine"),
        dose=Decimal("35"),
        dose_unit="mg",
        route="iv",
        start_date=START,
        prescriber=clinician,
    )
    with pytest.raises(ValidationError) as excinfo:
        wrong_unit.full_clean()
    assert _refusal(excinfo)["dose_unit"] == ["Ketamine (IV) is dosed in mg/kg; mg does not fit this drug."]


def test_route_the_drug_does_not_allow_is_refused(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "50", route="iv")
    assert _refusal(excinfo)["route"] == ["Sertraline is not given this way. Allowed: by mouth."]


def test_route_message_lists_every_allowed_route(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "lorazepam", "1", route="nasal")
    assert _refusal(excinfo)["route"] == ["Lorazepam is not given this way. Allowed: by mouth, under the tongue."]
    assert _prescribe(patient, clinician, "lorazepam", "1", route="sublingual").route == "sublingual"


def test_prescriber_from_another_clinic_is_refused(patient, other_clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, other_clinician, "sertraline", "50")
    assert _refusal(excinfo)["prescriber"] == ["The prescriber must work at the patient's clinic."]


def test_prescription_end_before_start_is_refused(patient, clinician):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "50", end_date=START - dt.timedelta(days=1))
    assert _refusal(excinfo)["end_date"] == ["The end date cannot be before the start date."]


# --- Schedules: daily total and times (§6 per local day, §7) -----------------------------


def test_schedule_daily_total_above_the_maximum_is_refused(patient, clinician):
    twice = ScheduleSpec(times_of_day=("08:00", "20:00"))
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "150", schedules=[twice])
    assert _refusal(excinfo)["times_of_day"] == [
        "2 doses of 150 mg make 300 mg a day, above the maximum for Sertraline: 200 mg per local calendar day."
    ]
    # prescribe() is one transaction: the prescription row is rolled back with its schedule.
    assert not Prescription.objects.filter(patient=patient).exists()
    assert not DoseSchedule.objects.exists()


def test_schedule_daily_total_at_the_maximum_is_accepted(patient, clinician):
    twice = ScheduleSpec(times_of_day=("08:00", "20:00"))
    rx = _prescribe(patient, clinician, "sertraline", "100", schedules=[twice])
    assert rx.schedules.get().times_of_day == ["08:00", "20:00"]
    assert PlannedDose.objects.filter(prescription=rx).exists()


def test_prn_daily_total_uses_the_most_doses_a_day(patient, clinician):
    prn = ScheduleSpec(kind=DoseSchedule.Kind.PRN, prn_max_doses_per_day=6)
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "lorazepam", "2", schedules=[prn])
    assert _refusal(excinfo)["prn_max_doses_per_day"] == [
        "6 doses of 2 mg make 12 mg a day, above the maximum for Lorazepam: 10 mg per local calendar day."
    ]


def test_daily_total_uses_the_age_adjusted_maximum(clinic, clinician):
    older = factories.PatientFactory(clinic=clinic, date_of_birth=_born_years_before(70))
    twice = ScheduleSpec(times_of_day=("08:00", "20:00"))
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(older, clinician, "citalopram", "20", schedules=[twice])
    assert _refusal(excinfo)["times_of_day"] == [
        "2 doses of 20 mg make 40 mg a day, above the maximum for Citalopram for a patient over 60: "
        "20 mg per local calendar day (label: 20 mg a day above age 60, 40 mg otherwise; this patient is 70)."
    ]


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ((), "Give one to 4 times of day."),
        (("06:00", "10:00", "14:00", "18:00", "22:00"), "Give one to 4 times of day."),
        (("25:00",), TIMES_FORMAT_MESSAGE),
        (("24:00",), TIMES_FORMAT_MESSAGE),
        (("08:60",), TIMES_FORMAT_MESSAGE),
        (("8:00",), TIMES_FORMAT_MESSAGE),
        (("08:00", "8pm"), TIMES_FORMAT_MESSAGE),
        (("08:00", "20:00", "08:00"), "Each time of day may appear only once."),
    ],
    ids=["none", "five", "25:00", "24:00", "08:60", "8:00", "8pm", "duplicate"],
)
def test_bad_schedule_times_are_refused(patient, clinician, times, message):
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "25", schedules=[ScheduleSpec(times_of_day=times)])
    assert _refusal(excinfo)["times_of_day"] == [message]
    assert not Prescription.objects.exists()


def test_four_times_a_day_and_clock_edges_are_accepted(patient, clinician):
    times = ("00:00", "08:00", "16:00", "23:59")
    rx = _prescribe(patient, clinician, "sertraline", "25", schedules=[ScheduleSpec(times_of_day=times)])
    assert rx.schedules.get().times_of_day == list(times)


def test_time_with_trailing_newline_is_refused(patient, clinician):
    schedule = DoseSchedule(
        prescription=factories.PrescriptionFactory(patient=patient, dose=Decimal("25")),
        times_of_day=["08:00", "08:00\n"],
        start_date=START,
    )
    with pytest.raises(ValidationError) as excinfo:
        schedule.full_clean()
    assert _refusal(excinfo)["times_of_day"] == [TIMES_FORMAT_MESSAGE]


def test_weekday_schedule_without_days_is_refused(patient, clinician):
    spec = ScheduleSpec(kind=DoseSchedule.Kind.WEEKDAYS, weekdays=())
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "50", schedules=[spec])
    assert _refusal(excinfo)["weekdays"] == ["Choose at least one weekday (0 = Monday ... 6 = Sunday), each once."]


@pytest.mark.parametrize("weekdays", [(7,), (-1,), (0, 0)], ids=["seven", "negative", "repeated"])
def test_weekday_schedule_with_bad_days_is_refused(patient, clinician, weekdays):
    spec = ScheduleSpec(kind=DoseSchedule.Kind.WEEKDAYS, weekdays=weekdays)
    with pytest.raises(ValidationError) as excinfo:
        _prescribe(patient, clinician, "sertraline", "50", schedules=[spec])
    assert _refusal(excinfo)["weekdays"] == ["Choose at least one weekday (0 = Monday ... 6 = Sunday), each once."]


def test_weekday_schedule_with_days_is_accepted(patient, clinician):
    spec = ScheduleSpec(kind=DoseSchedule.Kind.WEEKDAYS, weekdays=(0, 3))
    rx = _prescribe(patient, clinician, "sertraline", "50", schedules=[spec])
    assert rx.schedules.get().weekdays == [0, 3]


def test_prn_schedule_with_fixed_times_is_refused(patient, clinician):
    schedule = DoseSchedule(
        prescription=factories.PrescriptionFactory(patient=patient, drug=factories.drug("lorazepam"), dose=1),
        kind=DoseSchedule.Kind.PRN,
        times_of_day=["08:00"],
        start_date=START,
    )
    with pytest.raises(ValidationError) as excinfo:
        schedule.full_clean()
    assert _refusal(excinfo)["times_of_day"] == ["An as-needed schedule has no fixed times."]


# --- Patient ----------------------------------------------------------------------------


def _patient(clinic, **kwargs) -> Patient:
    values = {
        "clinic": clinic,
        "record_number": "NEW-1",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "date_of_birth": dt.date(1990, 1, 1),
    }
    values.update(kwargs)
    return Patient(**values)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "GMT+1", "Europe/Londres", "europe/london", ""])
def test_unknown_timezone_is_refused(clinic, zone):
    with pytest.raises(ValidationError) as excinfo:
        _patient(clinic, timezone=zone).full_clean()
    if zone:
        assert _refusal(excinfo)["timezone"] == [
            f"{zone} is not a known time zone. Use a name such as Europe/London or America/New_York."
        ]
    else:
        assert "timezone" in _refusal(excinfo)


@pytest.mark.parametrize(
    "zone", ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
)
def test_iana_timezones_are_accepted(clinic, zone):
    patient = _patient(clinic, timezone=zone)
    patient.full_clean()
    patient.save()
    assert patient.zone.key == zone


def test_responsible_clinician_from_another_clinic_is_refused(clinic, other_clinician):
    with pytest.raises(ValidationError) as excinfo:
        _patient(clinic, responsible_clinician=other_clinician).full_clean()
    assert _refusal(excinfo)["responsible_clinician"] == [
        "The responsible clinician must work at the patient's clinic."
    ]


def test_responsible_clinician_from_the_same_clinic_is_accepted(clinic, clinician):
    _patient(clinic, responsible_clinician=clinician).full_clean()


def test_duplicate_record_number_in_the_clinic_is_refused_by_full_clean(patient):
    with pytest.raises(ValidationError) as excinfo:
        _patient(patient.clinic, record_number=patient.record_number).full_clean()
    # The unique constraint reports it before the database would.
    assert _refusal(excinfo) == {"__all__": ["Patient with this Clinic and Record number already exists."]}


def test_zero_weight_is_refused_by_full_clean(clinic):
    with pytest.raises(ValidationError) as excinfo:
        _patient(clinic, weight_kg=Decimal("0")).full_clean()
    assert _refusal(excinfo)["weight_kg"] == ["Weight must be more than 0 kg."]
    _patient(clinic, weight_kg=Decimal("72.5")).full_clean()
