"""Prescribing every regimen from the patient's page, as a prescriber does it in the admin's HTML forms.

Time is frozen at 1 March 2026 (UTC) so the previews cross New York's spring-forward change
(8 March 2026, EST -> EDT): a 10:00 session stays 10:00 on the wall clock either side of it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests import factories
from tracker.models import DoseSchedule, PlannedDose, Prescription
from tracker.services.prescriptions import prescribe

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)  # Sunday 1 March, 07:00 in New York
MONDAY = dt.date(2026, 3, 2)
MON, TUE, WED, THU, FRI = 0, 1, 2, 3, 4


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


@pytest.fixture
def ny_patient(clinic, clinician):
    return factories.PatientFactory(
        clinic=clinic,
        responsible_clinician=clinician,
        record_number="N-0100",
        timezone="America/New_York",
        date_of_birth=dt.date(1980, 5, 1),
        weight_kg=Decimal("70"),
    )


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def url(patient) -> str:
    return reverse("admin:tracker_prescription_prescribe", args=[patient.pk])


def form(drug: str, dose: str, regimen: str, **fields) -> dict:
    return {
        "drug": str(factories.drug(drug).pk),
        "dose": dose,
        "route": "",
        "regimen": regimen,
        "times_of_day": "10:00",
        "continuation_every_weeks": "2",
        "start_date": MONDAY.isoformat(),
        "end_date": "",
        "indication": "Treatment-resistant depression",
        **fields,
    }


def preview(client, patient, data) -> list[str]:
    response = client.post(url(patient), {**data, "preview": "Preview planned doses"})
    assert response.status_code == 200, response.context["form"].errors if response.context else response
    assert not Prescription.objects.filter(patient=patient).exists()  # a preview saves nothing
    return response.context["preview"]


def test_the_page_has_the_patient_the_drug_ranges_and_a_start_date_that_renders(
    client, clinician, ny_patient, monkeypatch
):
    late = dt.datetime(2026, 3, 2, 3, 30, tzinfo=dt.UTC)  # 2 March in UTC, still 1 March in New York
    monkeypatch.setattr("django.utils.timezone.now", lambda: late)
    client.force_login(clinician.user)
    content = client.get(url(ny_patient)).content.decode()
    assert ny_patient.full_name in content and "N-0100" in content and "70 kg" in content
    assert "local time America/New_York" in content
    assert 'type="date" name="start_date" value="2026-03-01"' in content  # today in New York, not UTC
    assert "Sertraline — mg per dose; usual 50–200 mg a day, maximum 200 mg a day" in content
    assert (
        "Esketamine (nasal) — mg per session; usual 56–84 mg, maximum 84 mg per session; day 1: 56 mg (TRD)" in content
    )
    assert '<datalist id="indication-suggestions"><option value="Treatment-resistant depression' in content


def test_esketamine_phases_preview_across_the_dst_change_then_save(north, ny_patient):
    data = form("esketamine", "56", "esketamine_phases", weekdays=[str(MON), str(THU)])
    assert preview(north, ny_patient, data) == [
        "Mon 2 Mar 2026, 10:00 EST",
        "Thu 5 Mar 2026, 10:00 EST",
        "Mon 9 Mar 2026, 10:00 EDT",  # after the spring-forward: still 10:00 on the clinic's clock
        "Thu 12 Mar 2026, 10:00 EDT",
        "Mon 16 Mar 2026, 10:00 EDT",
        "Thu 19 Mar 2026, 10:00 EDT",
        "Mon 23 Mar 2026, 10:00 EDT",
        "Thu 26 Mar 2026, 10:00 EDT",
    ]
    response = north.post(url(ny_patient), data)
    assert response.status_code == 302
    rx = Prescription.objects.get(patient=ny_patient)
    phases = list(rx.schedules.order_by("start_date").values_list("phase", "kind", "weekdays", "start_date"))
    assert phases == [
        ("induction", "weekdays", [MON, THU], MONDAY),
        ("maintenance", "weekdays", [MON], dt.date(2026, 3, 30)),
        ("continuation", "every_n_days", [], dt.date(2026, 4, 27)),
    ]
    first = PlannedDose.objects.filter(prescription=rx).order_by("due_at").first()
    assert first.due_at == dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # 10:00 EST


def test_ketamine_series_plans_exactly_the_infusions(north, ny_patient):
    data = form("ketamine", "0.5", "ketamine_series", weekdays=[str(MON), str(WED), str(FRI)], infusions="6")
    shown = preview(north, ny_patient, data)
    assert [s.split(",")[0] for s in shown] == [
        "Mon 2 Mar 2026",
        "Wed 4 Mar 2026",
        "Fri 6 Mar 2026",
        "Mon 9 Mar 2026",
        "Wed 11 Mar 2026",
        "Fri 13 Mar 2026",
    ]
    assert north.post(url(ny_patient), data).status_code == 302
    rx = Prescription.objects.get(patient=ny_patient)
    assert PlannedDose.objects.filter(prescription=rx).count() == 6


@pytest.mark.parametrize(
    ("regimen", "fields", "kind", "expected"),
    [
        (
            "times",
            {"times_of_day": "08:00, 20:00"},
            "daily",
            ["Mon 2 Mar 2026, 08:00 EST", "Mon 2 Mar 2026, 20:00 EST"],
        ),
        ("weekdays", {"weekdays": [str(TUE), str(FRI)]}, "weekdays", ["Tue 3 Mar 2026, 10:00 EST"]),
        (
            "every_n_days",
            {"interval_days": "3"},
            "every_n_days",
            ["Mon 2 Mar 2026, 10:00 EST", "Thu 5 Mar 2026, 10:00 EST"],
        ),
        ("prn", {"prn_max_doses_per_day": "2", "times_of_day": "00:00"}, "prn", []),
    ],
)
def test_each_regular_regimen_previews_and_saves(north, ny_patient, regimen, fields, kind, expected):
    data = form("lorazepam", "1", regimen, **fields)
    response = north.post(url(ny_patient), {**data, "preview": "Preview planned doses"})
    shown = response.context["preview"]
    assert shown[: len(expected)] == expected
    if kind == "prn":
        assert shown == []
        assert "as-needed doses are logged when taken and never counted as missed" in response.content.decode()
    assert north.post(url(ny_patient), data).status_code == 302
    schedule = Prescription.objects.get(patient=ny_patient).schedules.get()
    assert schedule.kind == kind
    if kind == "prn":
        assert schedule.prn_max_doses_per_day == 2


@pytest.mark.parametrize(
    ("drug", "regimen", "fields", "field", "message"),
    [
        ("sertraline", "esketamine_phases", {"weekdays": ["0", "3"]}, "regimen", "is for esketamine, not Sertraline"),
        ("esketamine", "times", {}, "regimen", "is given in clinic sessions"),
        ("esketamine", "esketamine_phases", {"weekdays": ["1", "3"]}, "weekdays", "tick the start date's day (Monday)"),
        ("lorazepam", "weekdays", {}, "weekdays", "Choose at least one weekday."),
        ("lorazepam", "prn", {}, "prn_max_doses_per_day", "how many as-needed doses a day"),
        ("lorazepam", "times", {"times_of_day": "8am"}, "times_of_day", "HH:MM on a 24-hour clock"),
    ],
)
@pytest.mark.parametrize("action", ["save", "preview"])
def test_a_regimen_that_does_not_fit_is_refused_on_its_field(
    north, ny_patient, drug, regimen, fields, field, message, action
):
    dose = {"sertraline": "50", "esketamine": "56", "lorazepam": "1"}[drug]
    data = form(drug, dose, regimen, **fields)
    if action == "preview":
        data["preview"] = "Preview planned doses"  # a preview refuses as a save does, never a 500
    response = north.post(url(ny_patient), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    shown = errors.get(field) if field in response.context["form"].fields else errors.get("__all__")
    assert shown and message in " ".join(shown), errors
    assert not Prescription.objects.filter(patient=ny_patient).exists()


def test_change_times_keeps_the_dose_and_the_past_and_says_why(north, ny_patient, clinician):
    rx = prescribe(
        patient=ny_patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("50"),
        start_date=dt.date(2026, 2, 20),
        prescriber=clinician,
        now=dt.datetime(2026, 2, 20, 5, 0, tzinfo=dt.UTC),
    )
    past = list(PlannedDose.objects.filter(prescription=rx, due_at__lt=NOW).values_list("id", "due_at"))
    page = north.get(reverse("admin:tracker_prescription_reschedule", args=[rx.pk])).content.decode()
    assert 'value="08:00"' in page  # the running schedule is the starting point
    response = north.post(
        reverse("admin:tracker_prescription_reschedule", args=[rx.pk]),
        {"regimen": "times", "times_of_day": "21:00", "continuation_every_weeks": "2", "reason": "Sleepy in the day"},
    )
    assert response.status_code == 302
    rx.refresh_from_db()
    assert rx.dose == Decimal("50") and rx.status == Prescription.Status.ACTIVE  # no new version
    live = rx.schedules.filter(active_until__isnull=True).get()
    assert live.times_of_day == ["21:00"]
    assert (live.created_by, live.created_at, live.change_reason) == (clinician.user, NOW, "Sleepy in the day")
    assert list(PlannedDose.objects.filter(id__in=[i for i, _ in past]).values_list("id", "due_at")) == past
    upcoming = PlannedDose.objects.filter(prescription=rx, due_at__gt=NOW).exclude(status="cancelled")
    local_hours = {d.due_at.astimezone(ny_patient.zone).hour for d in upcoming}
    assert local_hours == {21}
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert "New dose times saved; past planned doses are kept." in notes
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.filter(object_id=str(rx.pk), change_message__contains="Sleepy in the day").exists()
    assert DoseSchedule.objects.filter(prescription=rx).count() == 2  # the old version is kept, ended


def test_patient_page_and_timeline_offer_prescribe_to_prescribers_only(north, client, clinic, ny_patient):
    link = url(ny_patient)
    assert link in north.get(reverse("admin:tracker_patient_change", args=[ny_patient.pk])).content.decode()
    assert link in north.get(reverse("admin:tracker_patient_timeline", args=[ny_patient.pk])).content.decode()
    nurse = factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-north")
    client.force_login(nurse.user)
    assert link not in client.get(reverse("admin:tracker_patient_change", args=[ny_patient.pk])).content.decode()
    assert client.get(link).status_code == 403


class TestDoseChecksOnTheForm:
    """Each dose check of clinical-reference §1, §2 and §6, as the prescriber meets it in the form."""

    def post(self, client, patient, drug, dose, regimen="times", **fields):
        return client.post(url(patient), form(drug, dose, regimen, **fields))

    def test_above_the_usual_range_saves_with_a_warning_kept_on_the_prescription(self, north, ny_patient):
        response = self.post(north, ny_patient, "fluoxetine", "70")  # usual 20–60, maximum 80 (§6)
        assert response.status_code == 302
        rx = Prescription.objects.get(patient=ny_patient)
        assert rx.dose_warnings and "usual" in rx.dose_warnings[0]
        shown = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
        assert rx.dose_warnings[0] in shown
        assert (
            rx.dose_warnings[0]
            in north.get(reverse("admin:tracker_prescription_change", args=[rx.pk])).content.decode()
        )
        timeline = north.get(reverse("admin:tracker_patient_timeline", args=[ny_patient.pk])).content.decode()
        assert rx.dose_warnings[0] in timeline

    def test_an_age_ceiling_names_the_age_rule(self, north, ny_patient):
        ny_patient.date_of_birth = dt.date(1958, 1, 1)  # 68
        ny_patient.save()
        response = self.post(north, ny_patient, "citalopram", "30")
        message = " ".join(response.context["form"].errors["dose"])
        assert "over 60" in message and "this patient is 68" in message, message
        assert not Prescription.objects.filter(patient=ny_patient).exists()

    def test_esketamine_is_refused_for_a_minor_saying_why(self, north, ny_patient):
        ny_patient.date_of_birth = dt.date(2010, 1, 1)  # 16
        ny_patient.save()
        response = self.post(north, ny_patient, "esketamine", "56", "esketamine_phases", weekdays=[str(MON), str(THU)])
        message = " ".join(response.context["form"].non_field_errors())
        assert "18" in message, message
        assert not Prescription.objects.filter(patient=ny_patient).exists()

    def test_iv_ketamine_needs_a_recorded_weight(self, north, ny_patient):
        ny_patient.weight_kg = None
        ny_patient.save()
        response = self.post(north, ny_patient, "ketamine", "0.5", "ketamine_series", weekdays=[str(MON), str(THU)])
        assert "Record the patient's weight first" in " ".join(response.context["form"].non_field_errors())
        assert not Prescription.objects.filter(patient=ny_patient).exists()

    def test_an_esketamine_day_one_dose_off_the_label_warns_but_saves(self, north, ny_patient):
        response = self.post(north, ny_patient, "esketamine", "84", "esketamine_phases", weekdays=[str(MON), str(THU)])
        assert response.status_code == 302
        shown = " ".join(str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning")
        assert "56 mg" in shown and "day 1" in shown.lower(), shown

    def test_above_the_label_maximum_is_refused_naming_it(self, north, ny_patient):
        response = self.post(north, ny_patient, "fluoxetine", "100")
        assert "maximum" in " ".join(response.context["form"].errors["dose"])
        assert "80 mg" in " ".join(response.context["form"].errors["dose"])
