"""Lab units (issue 18): UK clinicians read glucose and lipids in mmol/L. They may type them so, on
the admin's "Add measurement" form and in the API (``unit``); the tracker converts to the stored
mg/dL with each molecule's factor (glucose 18.016, cholesterol 38.67, triglycerides 88.57), refuses
a unit the kind has not by name, checks the range after converting with the message in the unit
typed, and shows the stored value with its unit. FHIR keeps the canonical LOINC code and UCUM unit.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from tests.test_admin_scoping import admin_url
from tracker import clinical, fhir
from tracker.models import ClinicalMeasurement
from tracker.models.measurements import MEASUREMENT_KINDS
from tracker.services.measurements import record_measurement

pytestmark = pytest.mark.django_db

Kind = ClinicalMeasurement.Kind
NOW = dt.datetime(2026, 6, 2, 9, 0, tzinfo=dt.UTC)


def record(patient, kind: str, value: str, unit: str = "") -> ClinicalMeasurement:
    return record_measurement(
        patient=patient, kind=kind, value=Decimal(value), unit=unit, recorded_by=None, measured_at=NOW, now=NOW
    )


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def add_url(patient) -> str:
    return f"{admin_url('add', 'clinicalmeasurement')}?patient={patient.pk}"


def test_the_factors_are_cited_keys_in_clinical_and_read_where_used(settings, patient):
    """The factors live in ``tracker.clinical`` (one place for every cited number): a clinic that
    overrides one converts with its own, and the defaults are the cited figures."""
    assert [clinical.get(f"{k}_MG_DL_PER_MMOL_L") for k in ("GLUCOSE", "CHOLESTEROL", "TRIGLYCERIDES")] == [
        Decimal("18.016"),
        Decimal("38.67"),
        Decimal("88.57"),
    ]
    settings.TRACKER_CLINICAL_OVERRIDES = {"GLUCOSE_MG_DL_PER_MMOL_L": Decimal("18")}
    assert record(patient, Kind.FASTING_GLUCOSE, "5.2", unit="mmol/L").value == Decimal("93.60")
    assert MEASUREMENT_KINDS[Kind.FASTING_GLUCOSE].in_other_units(Decimal("90")) == "5 mmol/L"


@pytest.mark.parametrize(
    ("kind", "typed", "stored"),
    [
        (Kind.FASTING_GLUCOSE, "5.2", "93.68"),  # 5.2 × 18.016 = 93.6832
        (Kind.TOTAL_CHOLESTEROL, "5.0", "193.35"),  # × 38.67
        (Kind.LDL, "3.0", "116.01"),
        (Kind.HDL, "1.2", "46.40"),  # 46.404
        (Kind.TRIGLYCERIDES, "1.7", "150.57"),  # × 88.57 = 150.569
    ],
)
def test_mmol_per_litre_is_stored_in_mg_per_decilitre(patient, kind, typed, stored):
    m = record(patient, kind, typed, unit="mmol/L")
    m.refresh_from_db()
    assert (m.value, m.unit) == (Decimal(stored), "mg/dL")
    assert m.history.get().history_change_reason == f"Entered as {typed.rstrip('0').rstrip('.')} mmol/L; " + (
        f"stored as {m.display_value}"
    )


def test_the_stored_unit_or_none_is_kept_as_typed(patient):
    assert record(patient, Kind.FASTING_GLUCOSE, "92", unit="mg/dL").value == Decimal("92")
    assert record(patient, Kind.FASTING_GLUCOSE, "92", unit="MG/DL").value == Decimal("92")
    assert record(patient, Kind.HEIGHT, "172").value == Decimal("172")


@pytest.mark.parametrize(
    ("kind", "unit", "message"),
    [
        (Kind.FASTING_GLUCOSE, "mmol", "“mmol” is not a unit for fasting glucose: enter it in mg/dL or mmol/L."),
        (Kind.HEIGHT, "mmol/L", "“mmol/L” is not a unit for height: enter it in cm."),
        (Kind.HBA1C, "mmol/mol", "“mmol/mol” is not a unit for hba1c: enter it in %."),
    ],
)
def test_an_unknown_unit_is_refused_by_name(patient, kind, unit, message):
    with pytest.raises(ValidationError) as excinfo:
        record(patient, kind, "5", unit=unit)
    assert excinfo.value.message_dict == {"unit": [message]}
    assert not ClinicalMeasurement.objects.exists()


@pytest.mark.parametrize(
    ("kind", "typed", "message"),
    [
        (
            Kind.FASTING_GLUCOSE,
            "92",  # mg/dL typed as mmol/L: 1657 mg/dL
            "Fasting glucose must be between 1.12 and 55.5 mmol/L. Check the number, and that it is in mmol/L.",
        ),
        (
            Kind.TRIGLYCERIDES,
            "0.1",  # 8.86 mg/dL, under 10
            "Triglycerides must be between 0.12 and 112.9 mmol/L. Check the number, and that it is in mmol/L.",
        ),
    ],
)
def test_the_range_is_checked_after_converting_in_the_unit_typed(patient, kind, typed, message):
    with pytest.raises(ValidationError) as excinfo:
        record(patient, kind, typed, unit="mmol/L")
    assert excinfo.value.message_dict == {"value": [message]}


def test_the_range_edges_named_in_mmol_per_litre_are_accepted(patient):
    assert record(patient, Kind.FASTING_GLUCOSE, "1.12", unit="mmol/L").value == Decimal("20.18")
    assert record(patient, Kind.FASTING_GLUCOSE, "55.5", unit="mmol/L").value == Decimal("999.89")


def test_fhir_keeps_the_canonical_loinc_and_ucum(patient):
    m = record(patient, Kind.FASTING_GLUCOSE, "5.2", unit="mmol/L")
    (obs,) = [
        e["resource"] for e in fhir.patient_bundle(patient)["entry"] if e["resource"]["id"] == f"measurement-{m.pk}"
    ]
    assert obs["code"]["coding"][0]["code"] == "1558-6"
    assert (obs["valueQuantity"]["value"], obs["valueQuantity"]["code"]) == (93.68, "mg/dL")


class TestAdminForm:
    def test_a_glucose_typed_in_mmol_per_litre(self, north, patient):
        form = {"patient": patient.pk, "kind": Kind.FASTING_GLUCOSE, "value": "5.2", "unit": "mmol/L"}
        response = north.post(add_url(patient), form, follow=True)
        assert response.redirect_chain, response.context["form"].errors
        m = ClinicalMeasurement.objects.get()
        assert (m.value, m.unit) == (Decimal("93.68"), "mg/dL")
        page = response.content.decode()
        assert "Recorded Fasting glucose 93.68 mg/dL (entered as 5.2 mmol/L) for" in page
        listing = north.get(admin_url("changelist", "clinicalmeasurement")).content.decode()
        assert "93.68 mg/dL (5.2 mmol/L)" in listing

    def test_the_form_offers_the_units(self, north, patient):
        form = north.get(add_url(patient)).context["form"]
        assert dict(form.fields["kind"].choices)[Kind.TOTAL_CHOLESTEROL] == "Total cholesterol (mg/dL or mmol/L)"
        assert {"", "mg/dL", "mmol/L", "cm"} <= set(dict(form.fields["unit"].choices))

    def test_a_unit_the_kind_has_not_is_refused_at_the_unit(self, north, patient):
        form = {"patient": patient.pk, "kind": Kind.HEIGHT, "value": "172", "unit": "mmol/L"}
        response = north.post(add_url(patient), form)
        assert response.status_code == 200
        assert response.context["form"].errors == {"unit": ["“mmol/L” is not a unit for height: enter it in cm."]}

    def test_out_of_range_after_converting_names_the_unit_typed(self, north, patient):
        form = {"patient": patient.pk, "kind": Kind.TOTAL_CHOLESTEROL, "value": "193", "unit": "mmol/L"}
        response = north.post(add_url(patient), form)
        assert response.context["form"].errors == {
            "value": [
                "Total cholesterol must be between 1.04 and 25.85 mmol/L. Check the number, and that it is in mmol/L."
            ]
        }


class TestApi:
    @pytest.fixture
    def api(self, clinician):
        client = APIClient()
        client.force_authenticate(clinician.user)
        return client

    def test_unit_converts_and_the_stored_value_comes_back_with_its_unit(self, api, patient):
        url = "/api/measurements/"
        body = {"patient": patient.pk, "kind": "triglycerides", "value": "1.7", "unit": "mmol/L"}
        response = api.post(url, body, format="json")
        assert response.status_code == 201, response.json()
        assert (Decimal(str(response.json()["value"])), response.json()["unit"]) == (Decimal("150.57"), "mg/dL")

    def test_an_unknown_unit_is_a_400_naming_the_field(self, api, patient):
        url = "/api/measurements/"
        body = {"patient": patient.pk, "kind": "hdl", "value": "1.2", "unit": "g/L"}
        response = api.post(url, body, format="json")
        assert response.status_code == 400
        assert "unit" in str(response.json())
        assert "“g/L” is not a unit for hdl cholesterol: enter it in mg/dL or mmol/L." in str(response.json())
