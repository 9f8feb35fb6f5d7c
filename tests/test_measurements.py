"""Clinical measurements (issue 18): height (for BMI), BP and pulse outside sessions, fasting glucose,
HbA1c and the lipids. Recorded through the admin's form from the patient page and through the API;
each refused outside its plausible range naming the range; entered in error, never deleted; exported
to FHIR as Observations with their LOINC codes and UCUM units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from fhir.resources.R4B.bundle import Bundle
from rest_framework.test import APIClient

from tests import factories
from tests.dosing import at
from tests.test_admin_scoping import admin_url
from tests.test_weights import weigh
from tracker import fhir
from tracker.models import ClinicalMeasurement, WeightMeasurement
from tracker.models.measurements import MEASUREMENT_KINDS, body_mass_index
from tracker.services.measurements import record_measurement

pytestmark = pytest.mark.django_db

Kind = ClinicalMeasurement.Kind

# One plausible reading of each kind, as a clinician types it: (kind, value, diastolic, shown as).
READINGS = [
    (Kind.HEIGHT, "172", None, "172 cm"),
    (Kind.BLOOD_PRESSURE, "128", "82", "128/82 mmHg"),
    (Kind.PULSE, "76", None, "76 beats per minute"),
    (Kind.FASTING_GLUCOSE, "95", None, "95 mg/dL"),
    (Kind.HBA1C, "5.6", None, "5.6 %"),
    (Kind.TOTAL_CHOLESTEROL, "190", None, "190 mg/dL"),
    (Kind.LDL, "110", None, "110 mg/dL"),
    (Kind.HDL, "52", None, "52 mg/dL"),
    (Kind.TRIGLYCERIDES, "140", None, "140 mg/dL"),
]
# The LOINC code and UCUM unit each kind is exported with (sources in tracker/models/measurements.py).
CODES = {
    Kind.HEIGHT: ("8302-2", "cm"),
    Kind.PULSE: ("8867-4", "/min"),
    Kind.FASTING_GLUCOSE: ("1558-6", "mg/dL"),
    Kind.HBA1C: ("4548-4", "%"),
    Kind.TOTAL_CHOLESTEROL: ("2093-3", "mg/dL"),
    Kind.LDL: ("13457-7", "mg/dL"),
    Kind.HDL: ("2085-9", "mg/dL"),
    Kind.TRIGLYCERIDES: ("2571-8", "mg/dL"),
}


def measure(patient, kind, value, when="2026-06-01T09:00", diastolic=None, by=None) -> ClinicalMeasurement:
    return record_measurement(
        patient=patient,
        kind=kind,
        value=Decimal(value),
        diastolic=Decimal(diastolic) if diastolic else None,
        measured_at=at(when),
        recorded_by=by,
        now=at(when),
    )


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def add_url(patient=None) -> str:
    url = admin_url("add", "clinicalmeasurement")
    return f"{url}?patient={patient.pk}" if patient else url


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


class TestAdminForm:
    def test_the_patient_page_links_to_add_measurement(self, north, patient):
        assert add_url(patient) in north.get(admin_url("change", "patient", patient.pk)).content.decode()

    @pytest.mark.parametrize(("kind", "value", "diastolic", "shown"), READINGS)
    def test_each_kind_is_recorded_in_its_unit(self, north, clinician, kind, value, diastolic, shown):
        patient = factories.PatientFactory(clinic=clinician.clinic, timezone="America/New_York", record_number="NY")
        form = {"patient": patient.pk, "kind": kind, "value": value, "measured_at": "2026-06-01T09:00"}
        if diastolic:
            form["diastolic"] = diastolic
        response = north.post(add_url(patient), form, follow=True)
        assert response.redirect_chain[-1][0] == admin_url("change", "patient", patient.pk)
        m = ClinicalMeasurement.objects.get()
        assert (m.kind, m.unit, m.display_value) == (kind, MEASUREMENT_KINDS[kind].unit, shown)
        assert m.measured_at == at("2026-06-01T13:00")  # 09:00 in New York (EDT)
        assert m.recorded_by == clinician.user
        assert m.history.get().history_user == clinician.user
        assert f"Recorded {m.get_kind_display()} {shown}" in response.content.decode()

    @pytest.mark.parametrize(
        ("kind", "value", "message"),
        [
            (Kind.HEIGHT, "1.72", "Height must be between 50 and 250 cm. Check the number, and that it is in cm."),
            (
                Kind.FASTING_GLUCOSE,
                "5.4",  # mmol/L typed where mg/dL is asked
                "Fasting glucose must be between 20 and 1000 mg/dL. Check the number, and that it is in mg/dL.",
            ),
            (Kind.HBA1C, "48", "HbA1c must be between 3 and 20 %. Check the number, and that it is in %."),
            (
                Kind.PULSE,
                "300",
                "Pulse must be between 20 and 250 beats per minute. "
                "Check the number, and that it is in beats per minute.",
            ),
        ],
    )
    def test_a_value_out_of_range_is_refused_naming_the_range(self, north, patient, kind, value, message):
        response = north.post(add_url(), {"patient": patient.pk, "kind": kind, "value": value})
        assert response.status_code == 200
        assert response.context["form"].errors == {"value": [message]}
        assert message in response.content.decode()
        assert not ClinicalMeasurement.objects.exists()

    def test_a_blood_pressure_needs_its_diastolic_below_the_systolic(self, north, patient):
        response = north.post(add_url(), {"patient": patient.pk, "kind": Kind.BLOOD_PRESSURE, "value": "120"})
        assert response.context["form"].errors == {
            "diastolic": ["A blood pressure needs its diastolic (the lower number) too."]
        }
        response = north.post(
            add_url(), {"patient": patient.pk, "kind": Kind.BLOOD_PRESSURE, "value": "80", "diastolic": "120"}
        )
        assert response.context["form"].errors == {
            "diastolic": ["Diastolic pressure must be between 20 and 200 mmHg, and below the systolic."]
        }
        response = north.post(add_url(), {"patient": patient.pk, "kind": Kind.PULSE, "value": "70", "diastolic": "60"})
        assert response.context["form"].errors == {
            "diastolic": ["Only a blood pressure has a diastolic; leave it empty."]
        }
        assert not ClinicalMeasurement.objects.exists()

    def test_another_clinics_patient_cannot_be_chosen_nor_seen(self, north, patient, other_patient):
        response = north.post(add_url(), {"patient": other_patient.pk, "kind": Kind.PULSE, "value": "70"})
        assert "patient" in response.context["form"].errors
        other = measure(other_patient, Kind.PULSE, "70")
        own = measure(patient, Kind.PULSE, "72")
        assert list(north.get(admin_url("changelist", "clinicalmeasurement")).context["cl"].result_list) == [own]
        assert north.get(admin_url("change", "clinicalmeasurement", other.pk)).status_code == 404

    def test_entered_in_error_from_the_list_is_kept_with_who_and_why(self, north, clinician, patient):
        wrong = measure(patient, Kind.HBA1C, "9.9")
        actions = north.get(admin_url("changelist", "clinicalmeasurement")).context["action_form"].fields["action"]
        assert "delete_selected" not in [name for name, _ in actions.choices]
        response = north.post(
            admin_url("changelist", "clinicalmeasurement"),
            {
                "action": "mark_entered_in_error",
                "_selected_action": [wrong.pk],
                "confirm": "1",
                "reason": "Other patient",
            },
        )
        assert response.status_code == 302
        wrong.refresh_from_db()
        assert wrong.is_entered_in_error and wrong.entered_in_error_by == clinician.user
        assert wrong.entered_in_error_reason == "Other patient"
        assert [h.history_change_reason for h in wrong.history.order_by("history_id")] == [
            None,
            "Entered in error: Other patient",
        ]
        with pytest.raises(Exception, match="never deleted"):
            wrong.delete()

    def test_a_clinic_manager_cannot_add(self, client, clinic, patient):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        assert client.get(add_url(patient)).status_code == 403
        assert add_url(patient) not in client.get(admin_url("change", "patient", patient.pk)).content.decode()


class TestConstraints:
    def test_the_database_refuses_out_of_range_values_and_a_wrong_unit(self, patient):
        for fields in (
            {"kind": Kind.HEIGHT, "value": Decimal("2"), "unit": "cm"},
            {"kind": Kind.HEIGHT, "value": Decimal("172"), "unit": "[in_i]"},
            {"kind": Kind.BLOOD_PRESSURE, "value": Decimal("120"), "unit": "mm[Hg]"},  # no diastolic
            {"kind": Kind.PULSE, "value": Decimal("70"), "unit": "/min", "diastolic": Decimal("60")},
        ):
            with pytest.raises(IntegrityError), transaction.atomic():
                ClinicalMeasurement.objects.create(patient=patient, measured_at=at("2026-06-01T09:00"), **fields)

    def test_each_kinds_constraint_says_the_same_words_as_the_form(self):
        messages = {c.name: c.violation_error_message for c in ClinicalMeasurement._meta.constraints}
        assert messages["tracker_measurement_ldl_in_range"] == (
            "LDL cholesterol must be between 5 and 800 mg/dL. Check the number, and that it is in mg/dL."
        )


class TestBmi:
    def test_body_mass_index(self):
        assert body_mass_index(Decimal("70.0"), Decimal("175")) == Decimal("22.9")  # 70 / 1.75² = 22.86

    def test_bmi_beside_each_weight_uses_the_height_on_record_then(self, north, patient):
        measure(patient, Kind.HEIGHT, "160", when="2026-05-01T09:00")
        measure(patient, Kind.HEIGHT, "180", when="2026-06-15T09:00")
        early = weigh(patient, "2026-04-01T09:00", "64.0")  # before any height: the first height
        middle = weigh(patient, "2026-06-01T09:00", "64.0")  # the 160 cm height
        late = weigh(patient, "2026-07-01T09:00", "81.0")  # the 180 cm height
        page = north.get(admin_url("changelist", "weightmeasurement"))
        admin = page.context["cl"].model_admin
        assert [admin.bmi(w) for w in (early, middle, late)] == ["25.0", "25.0", "25.0"]
        assert "BMI (kg/m²)" in page.content.decode()

    def test_no_height_says_so(self, north, patient):
        weigh(patient, "2026-06-01T09:00", "70.0")
        assert "no height on record" in north.get(admin_url("changelist", "weightmeasurement")).content.decode()
        response = north.post(
            admin_url("add", "weightmeasurement"), {"patient": patient.pk, "weight_kg": "71.0"}, follow=True
        )
        assert "No height on record, so no BMI." in response.content.decode()

    def test_adding_a_weight_says_its_bmi(self, north, patient):
        measure(patient, Kind.HEIGHT, "175", when="2026-05-01T09:00")
        response = north.post(
            admin_url("add", "weightmeasurement"), {"patient": patient.pk, "weight_kg": "70.0"}, follow=True
        )
        assert "BMI 22.9 kg/m²." in response.content.decode()


class TestApi:
    def test_a_clinician_records_each_kind(self, patient, clinician):
        client = api(clinician.user)
        for kind, value, diastolic, _ in READINGS:
            body = {"patient": patient.pk, "kind": kind, "value": value, "measured_at": "2026-06-01T10:00:00+01:00"}
            if diastolic:
                body["diastolic"] = diastolic
            response = client.post("/api/measurements/", body, format="json")
            assert response.status_code == 201, response.json()
            data = response.json()
            assert (data["kind"], data["unit"], data["measured_at"]) == (
                kind,
                MEASUREMENT_KINDS[kind].unit,
                "2026-06-01T09:00:00Z",
            )
            assert data["loinc"] == MEASUREMENT_KINDS[kind].loinc
        assert ClinicalMeasurement.objects.filter(recorded_by=clinician.user).count() == len(READINGS)
        listed = client.get("/api/measurements/", {"patient": patient.pk, "kind": Kind.HDL}).json()
        assert [row["value"] for row in listed["results"]] == ["52.00"]

    def test_out_of_range_is_a_400_naming_the_range(self, patient, clinician):
        response = api(clinician.user).post(
            "/api/measurements/", {"patient": patient.pk, "kind": Kind.TRIGLYCERIDES, "value": "1.7"}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {
            "value": ["Triglycerides must be between 10 and 10000 mg/dL. Check the number, and that it is in mg/dL."]
        }
        assert not ClinicalMeasurement.objects.exists()

    def test_a_patient_reads_their_own_and_cannot_add(self, clinic, patient, clinician):
        user = factories.UserFactory(username="patient-measures")
        me = factories.PatientFactory(clinic=clinic, record_number="N-ME", user=user)
        mine = measure(me, Kind.PULSE, "70")
        measure(patient, Kind.PULSE, "90")
        client = api(user)
        assert [row["id"] for row in client.get("/api/measurements/").json()["results"]] == [mine.pk]
        response = client.post("/api/measurements/", {"patient": me.pk, "kind": "pulse", "value": "70"}, format="json")
        assert response.status_code == 403

    def test_entered_in_error_through_the_api(self, patient, clinician):
        m = measure(patient, Kind.LDL, "110")
        client = api(clinician.user)
        response = client.post(f"/api/measurements/{m.pk}/entered-in-error/", {"reason": "Lab mix-up"}, format="json")
        assert response.status_code == 200
        assert response.json()["entered_in_error_reason"] == "Lab mix-up"
        assert ClinicalMeasurement.objects.filter(pk=m.pk).exists()  # kept
        assert client.delete(f"/api/measurements/{m.pk}/").status_code == 405


class TestFhir:
    def test_every_kind_and_the_bmi_are_observations_with_loinc_and_ucum(self, patient):
        for kind, value, diastolic, _ in READINGS:
            measure(patient, kind, value, diastolic=diastolic)
        weight = weigh(patient, "2026-06-02T09:00", "74.0")
        wrong = measure(patient, Kind.PULSE, "71", when="2026-06-03T09:00")
        from tracker.services.records import mark_entered_in_error

        mark_entered_in_error(record=wrong, by=factories.UserFactory(), reason="Wrong patient")
        bundle = fhir.patient_bundle(patient)
        Bundle.model_validate(bundle)  # valid FHIR R4B
        observations = {
            e["resource"]["id"]: e["resource"]
            for e in bundle["entry"]
            if e["resource"]["id"].startswith(("measurement-", "bmi-"))
        }
        found = {}
        for resource in observations.values():
            if "valueQuantity" in resource and resource["status"] == "final":
                code = resource["code"]["coding"][0]
                assert code["system"] == "http://loinc.org"
                found[code["code"]] = (resource["valueQuantity"]["code"], resource["valueQuantity"]["system"])
        assert found == {
            **{loinc: (unit, "http://unitsofmeasure.org") for loinc, unit in CODES.values()},
            "39156-5": ("kg/m2", "http://unitsofmeasure.org"),
        }
        bp = next(r for r in observations.values() if r["code"]["coding"][0]["code"] == "85354-9")
        assert [
            (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
            for c in bp["component"]
        ] == [
            ("8480-6", 128, "mm[Hg]"),
            ("8462-4", 82, "mm[Hg]"),
        ]
        assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
        glucose = next(r for r in observations.values() if r["code"]["coding"][0]["code"] == "1558-6")
        assert glucose["category"][0]["coding"][0]["code"] == "laboratory"
        bmi = observations[f"bmi-{weight.pk}"]
        assert bmi["valueQuantity"]["value"] == 25.0  # 74 / 1.72²
        assert bmi["derivedFrom"] == [{"reference": fhir.full_url("Weight", weight.pk)}]
        assert observations[f"measurement-{wrong.pk}"]["status"] == "entered-in-error"

    def test_no_bmi_without_a_height(self, patient):
        weigh(patient, "2026-06-02T09:00", "74.0")
        assert not [e for e in fhir.patient_bundle(patient)["entry"] if e["resource"]["id"].startswith("bmi-")]
        assert WeightMeasurement.objects.count() == 1
