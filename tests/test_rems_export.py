"""The REMS Patient Monitoring Form export (§1): CSV per clinic and local dates, a printable page per session."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from tests import factories
from tests.dosing import at
from tests.test_ketamine_sessions import completed_session, esketamine_course, planned
from tracker.models import Drug, InClinicSession
from tracker.services.sessions import record_rems_form_submitted, start_session

pytestmark = pytest.mark.django_db

EXPORT = "admin:tracker_inclinicsession_rems_export"


@pytest.fixture
def setting(clinic, patient, clinician):
    """Two outpatient sessions in June 2026 (London, BST): a 56 mg first one and an 84 mg second one.

    The patient takes lorazepam (a benzodiazepine by class), oxycodone (an opioid, known only by its
    ATC code) and took methylphenidate until May (stopped before the sessions).
    """
    clinic.address = "1 North Street\nLeeds LS1 1AA"
    clinic.phone = "0113 496 0000"
    clinic.save()
    clinician.user.email = "dr.north@example.org"
    clinician.user.save()
    factories.PrescriptionFactory(
        patient=patient, drug=factories.drug("lorazepam"), dose=Decimal("1"), start_date=dt.date(2026, 5, 1)
    )
    # The catalogue has no opioid class: the drug's class is a stand-in, its ATC code says "opioid".
    opioid = Drug.objects.create(
        name="oxycodone",
        display_name="Oxycodone",
        drug_class="sga",
        routes=["oral"],
        atc_code="N02AA05",
        usual_min=Decimal("5"),
        usual_max=Decimal("20"),
    )
    factories.PrescriptionFactory(patient=patient, drug=opioid, dose=Decimal("5"), start_date=dt.date(2026, 5, 20))
    factories.PrescriptionFactory(
        patient=patient,
        drug=factories.drug("methylphenidate"),
        dose=Decimal("10"),
        start_date=dt.date(2026, 3, 1),
        end_date=dt.date(2026, 5, 31),
        status="stopped",
    )
    rx = esketamine_course(patient, clinician)
    first = completed_session(
        rx,
        clinician,
        minutes=130,
        monitoring={"cadss_total": 12, "respiratory_depression": False, "adverse_events": "=Nausea, settled"},
    )
    record_rems_form_submitted(session=first, submitted_at=at("2026-06-02T13:30"), now=at("2026-06-02T13:30"))
    second = completed_session(
        rx,
        clinician,
        first="2026-06-04T09:05",
        day="2026-06-04",
        devices=3,
        minutes=125,
        monitoring={"moaas_lowest": 5, "cadss_total": 0, "bp_discharge_systolic": 150, "bp_discharge_diastolic": 95},
    )
    return first, second


def rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def export(client, start: str = "2026-06-01", end: str = "2026-06-30"):
    return client.get(reverse(EXPORT), {"start": start, "end": end})


def test_the_csv_holds_every_form_field_the_record_has(client, clinician, setting):
    first, second = setting
    client.force_login(clinician.user)
    found = rows(export(client))
    assert [r["session_id"] for r in found] == [str(first.pk), str(second.pk)]
    one, two = found
    assert one["patient_name"] == first.patient.full_name
    assert one["date_of_birth"] == "1985-06-15"
    assert (one["first_treatment"], two["first_treatment"]) == ("Y", "N")
    assert one["enrolled"] == "Y" and one["enrolled_on"] == "2020-01-01"
    # Concomitant medicines active on the treatment date: by class, by ATC code, not a stopped one.
    assert one["concomitant_benzodiazepines"] == "Y"
    assert one["concomitant_opioids"] == "Y"
    assert one["concomitant_psychostimulants"] == "N"
    assert one["concomitant_maois"] == "N"
    assert one["concomitant_non_benzodiazepine_sedative_hypnotics"] == "N"
    assert one["monitoring_hcp"] == str(clinician)
    assert one["monitoring_hcp_email"] == "dr.north@example.org"
    assert one["setting_name"] == "Northside Clinic"
    assert one["setting_address"] == "1 North Street Leeds LS1 1AA"
    assert one["setting_phone"] == "0113 496 0000"
    assert one["treatment_date"] == "2026-06-01"
    assert (one["dose_mg"], two["dose_mg"]) == ("56", "84")
    assert one["lot_number"] == "L123"
    assert (one["monitoring_minutes"], two["monitoring_minutes"]) == ("130", "125")
    assert one["vitals_acceptable_before_administration"] == "Y"
    assert one["vitals_acceptable_before_completion"] == "Y"
    assert two["vitals_acceptable_before_completion"] == "N"  # 150/95 is over §1 bp_threshold
    assert one["bp_before_administration"] == "130/80 mmHg"
    assert one["bp_40_minutes"] == "138/85 mmHg"
    assert one["bp_40_minutes_taken_at"] == "2026-06-01 10:45 BST"  # the clinic's wall clock
    assert one["bp_before_completion"] == "128/80 mmHg"
    assert two["bp_before_completion"] == "150/95 mmHg"
    assert one["spo2_lowest"] == "97"
    assert (one["sedation"], two["sedation"]) == ("Y", "N")  # lowest MOAA/s 4, then 5
    assert (one["dissociation"], two["dissociation"]) == ("Y", "N")  # CADSS 12, then 0
    assert one["respiratory_depression"] == "N" and two["respiratory_depression"] == ""  # not recorded: blank
    assert one["adverse_events"] == "'=Nausea, settled"  # never run as a spreadsheet formula
    assert (one["form_submitted"], two["form_submitted"]) == ("Y", "N")
    assert one["form_submitted_at"] == "2026-06-02 14:30 BST" and two["form_submitted_at"] == ""


def test_inpatient_and_other_clinics_sessions_file_no_form(client, clinic, clinician, other_patient, setting):
    inpatient = factories.PatientFactory(clinic=clinic, record_number="N-IN", rems_enrolled_on=None)
    rx = esketamine_course(inpatient, clinician)
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        care_setting=InClinicSession.CareSetting.INPATIENT,
        bp_before_systolic=120,
        bp_before_diastolic=80,
        now=at("2026-06-01T09:00"),
    ).session
    other_rx = esketamine_course(other_patient, factories.ClinicianFactory(clinic=other_patient.clinic))
    completed_session(other_rx, factories.ClinicianFactory(clinic=other_patient.clinic))
    client.force_login(clinician.user)
    found = rows(export(client))
    assert {r["record_number"] for r in found} == {"N-0001"}
    # The inpatient session's page says why it has no form; its change page offers no link to one.
    page = client.get(reverse("admin:tracker_inclinicsession_rems_form", args=[session.pk]))
    assert page.status_code == 404
    assert "inpatient setting, which files no REMS Patient Monitoring Form" in page.content.decode()
    change = client.get(reverse("admin:tracker_inclinicsession_change", args=[session.pk])).content.decode()
    assert reverse("admin:tracker_inclinicsession_rems_form", args=[session.pk]) not in change


def test_the_date_range_is_the_clinics_local_days(client, clinician, setting):
    client.force_login(clinician.user)
    assert [r["treatment_date"] for r in rows(export(client, "2026-06-04", "2026-06-04"))] == ["2026-06-04"]
    assert rows(export(client, "2026-06-02", "2026-06-03")) == []


def test_bad_dates_are_refused_beside_the_field(client, clinician):
    client.force_login(clinician.user)
    response = export(client, "2026-06-30", "2026-06-01")
    assert response.status_code == 400
    assert "The end date cannot be before the start date." in response.content.decode()
    assert client.get(reverse(EXPORT)).status_code == 200  # the form, before any dates
    assert export(client, "June", "2026-06-01").status_code == 400


def test_printable_page_lists_each_field_with_its_source(client, clinician, setting):
    first, _ = setting
    client.force_login(clinician.user)
    change = client.get(reverse("admin:tracker_inclinicsession_change", args=[first.pk])).content.decode()
    url = reverse("admin:tracker_inclinicsession_rems_form", args=[first.pk])
    assert f'href="{url}"' in change  # linked from the session's change page
    listing = client.get(reverse("admin:tracker_inclinicsession_changelist")).content.decode()
    assert reverse(EXPORT) in listing  # and the export from the sessions list
    html = client.get(url).content.decode()
    assert "@media print" in html
    assert "Lot number" in html and "L123" in html
    assert "§1 REMS Patient Monitoring Form, lot number: InClinicSession.lot_number" in html
    assert "Benzodiazepines: Yes (Lorazepam)" in html
    assert "Opioids: Yes (Oxycodone)" in html
    assert "Psychostimulants: No prescription on record" in html


def test_only_users_who_may_view_sessions_of_that_clinic(client, clinician, other_clinician, setting):
    first, _ = setting
    url = reverse("admin:tracker_inclinicsession_rems_form", args=[first.pk])
    client.force_login(other_clinician.user)
    assert client.get(url).status_code == 404  # another clinic's session does not exist for them
    assert rows(export(client)) == []
    no_sessions = factories.ClinicianFactory(clinic=clinician.clinic, user__username="no-sessions")
    no_sessions.user.groups.clear()
    client.force_login(no_sessions.user)
    assert client.get(url).status_code == 403
    assert export(client).status_code == 403
