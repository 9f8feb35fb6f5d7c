"""FHIR R4 export of one patient's course as a Bundle of type ``collection``.

Mapping per clinical-reference §8: MedicationRequest per prescription version (linked by
``priorPrescription``), MedicationAdministration for in-clinic sessions (with their observation
period; the session's own dose event is not exported twice) and other doses given by staff,
MedicationStatement for doses the patient reports (including outside-clinic reports),
Observation for PHQ-9 / GAD-7 totals and for body weights (vital signs), Flag for the
tracker's flags. Entries are named by deterministic ``urn:uuid`` URLs so a re-export gives
the same references. Every dateTime carries the patient's own offset: instants as they
happened, course dates as the start (or, for an end, the last second) of that local day;
birthDate stays a plain date. RxNorm codes and profile URLs live in tracker/fhir_codes.py; a
profile (US Core 6.1.0, R4 vital signs) is declared only on a resource that meets it
(``profiles_for``). See docs/fhir.md for what the export conforms to.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.html import escape

from tracker import scales
from tracker.fhir_codes import (
    BP_COMPONENTS,
    RXNORM_SYSTEM,
    US_CORE_MEDICATION_REQUEST,
    US_CORE_PATIENT,
    US_CORE_SCREENING_ASSESSMENT,
    VITAL_SIGN_PROFILES,
    in_us_core_medication_codes,
    rxnorm_coding,
)
from tracker.models import (
    Assessment,
    Clinic,
    Clinician,
    DoseBasis,
    DoseEvent,
    DoseSchedule,
    DoseUnit,
    Flag,
    FlagKind,
    InClinicSession,
    Patient,
    Prescription,
    Route,
    WeightMeasurement,
)

Json = dict[str, Any]

RXNORM = RXNORM_SYSTEM  # codes and their sources: tracker/fhir_codes.py
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_KIND_SYSTEM = "urn:tracker:flag-kind"
FLAG_STATUS_SYSTEM = "urn:tracker:flag-status"  # open | acknowledged | resolved (the worklist's state)
FHIR_VERSION = "4.0"
# The media type FHIR R4 servers answer with (FHIR R4 §3.1.0.1.9, §2.1.0.4 "fhirVersion" parameter).
FHIR_JSON = f"application/fhir+json; fhirVersion={FHIR_VERSION}"
# HTTP refusals as OperationOutcome issue types (http://hl7.org/fhir/R4/valueset-issue-type.html).
ISSUE_TYPES = {401: "login", 403: "forbidden", 404: "not-found", 406: "not-supported"}
NAMESPACE = uuid.UUID("6f1d3c2e-8a47-4b8e-9a61-3f0c5d9e2b71")

# Questionnaire totals with their LOINC codes (clinical-reference §8).
SCORE_CODES = {
    "phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    "gad7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
}
# Questionnaires (clinical-reference §4, §8): the LOINC panel and its item codes in questionnaire
# order; each item's linkId is "/<item code>" (§8, as in US Core's PHQ-9 example). The GAD-7 item
# codes are not in §4: they are LOINC panel 69737-5's items as public FHIR material lists them [W].
QUESTIONNAIRE_PANELS = {
    "phq9": ("44249-1", "PHQ-9 quick depression assessment panel"),
    "gad7": ("69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
}
ITEM_CODES = {
    "phq9": ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"),
    "gad7": ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
}
# §4 PHQ-9 items: the LOINC answer codes of the four frequency options (GAD-7 uses the same list).
ANSWER_CODES = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
# LOINC's own FHIR Questionnaire canonical for a panel [W].
QUESTIONNAIRE_CANONICAL = "http://loinc.org/q/{}"
# The severity bands of scales.py as a code system of the project (one per instrument; no public one).
SCORE_BAND_SYSTEM = "urn:tracker:score-band:{}"
# In-clinic vital signs (clinical-reference §8; FHIR R4 vital-signs profiles bp and oxygensat).
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
# SpO2: 59408-5 (by pulse oximetry, §8) with 2708-6, which the R4 oxygensat profile requires.
SPO2_CODES = (
    ("2708-6", "Oxygen saturation in Arterial blood"),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
)
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENCOUNTER_CLASS = {
    InClinicSession.CareSetting.OUTPATIENT: ("AMB", "ambulatory"),
    InClinicSession.CareSetting.INPATIENT: ("IMP", "inpatient encounter"),
}
# DetectedIssue for an interaction (§8): ActCode DRG, and the tracker's severity mapped
# critical/urgent -> high, warning -> moderate, info -> low [P].
DETECTED_ISSUE_SEVERITY = {40: "high", 30: "high", 20: "moderate", 10: "low"}
XHTML = "http://www.w3.org/1999/xhtml"
# Body weight as a vital sign (FHIR R4 vital-signs profile: LOINC 29463-7, UCUM kg).
BODY_WEIGHT = ("29463-7", "Body weight")
# SNOMED CT route concepts.
ROUTE_CODES = {
    Route.ORAL: ("26643006", "Oral route"),
    Route.NASAL: ("46713006", "Nasal route"),
    Route.INTRAVENOUS: ("47625008", "Intravenous route"),
    Route.SUBLINGUAL: ("37839007", "Sublingual route"),
    Route.INTRAMUSCULAR: ("78421000", "Intramuscular route"),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RX_STATUS = {
    Prescription.Status.ACTIVE: "active",
    Prescription.Status.SUPERSEDED: "stopped",  # replaced by the next version (priorPrescription)
    Prescription.Status.COMPLETED: "completed",
    Prescription.Status.STOPPED: "stopped",
}


def full_url(resource_type: str, pk: int) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{resource_type}/{pk}')}"


def ref(resource_type: str, pk: int, display: str | None = None) -> Json:
    reference: Json = {"reference": full_url(resource_type, pk)}
    if display:
        reference["display"] = display
    return reference


class Exporter:
    """Builds one patient's bundle; ``instant`` writes datetimes in the patient's offset."""

    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self.zone = patient.zone
        self.subject = ref("Patient", patient.pk, patient.full_name)
        # Everyone a resource names, exported once each as a Practitioner after the bundle's records.
        self.practitioners: dict[int, Clinician] = {}
        # Every prescription version exported, for the DetectedIssues' implicated requests.
        self.requests: dict[int, Prescription] = {}

    def practitioner_ref(self, clinician: Clinician) -> Json:
        self.practitioners[clinician.pk] = clinician
        return ref("Practitioner", clinician.pk, str(clinician))

    def organization_ref(self, clinic: Clinic) -> Json:
        return ref("Organization", clinic.pk, clinic.name)

    def instant(self, value: dt.datetime) -> str:
        return value.astimezone(self.zone).isoformat(timespec="seconds")

    def day_start(self, day: dt.date) -> str:
        """A course date as the dateTime it starts, on the patient's wall clock with its offset."""
        return self.instant(dt.datetime.combine(day, dt.time.min, tzinfo=self.zone))

    def day_end(self, day: dt.date) -> str:
        """The last second of a course date (an end date is inclusive), with the patient's offset."""
        return self.instant(dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=self.zone))

    @staticmethod
    def number(value: Decimal) -> int | float:
        return int(value) if value == value.to_integral_value() else float(value)

    def quantity(self, value: Decimal, unit: str) -> Json:
        return {"value": self.number(value), "unit": unit, "system": UCUM, "code": unit}

    # --- resources ---------------------------------------------------------------------

    def patient_resource(self) -> Json:
        p = self.patient
        resource: Json = {
            "resourceType": "Patient",
            "id": f"patient-{p.pk}",
            "identifier": [{"system": f"urn:tracker:clinic:{p.clinic.slug}:mrn", "value": p.record_number}],
            "active": p.is_active and not p.is_entered_in_error,
            "name": [{"family": p.family_name, "given": [p.given_name]}],
            "gender": p.gender,  # FHIR AdministrativeGender as the clinic records it ("unknown" by default)
            "birthDate": p.date_of_birth.isoformat(),
        }
        if p.email:
            resource["telecom"] = [{"system": "email", "value": p.email}]
        if p.responsible_clinician is not None:
            resource["generalPractitioner"] = [self.practitioner_ref(p.responsible_clinician)]
        resource["managingOrganization"] = self.organization_ref(p.clinic)
        return resource

    def organization(self, clinic: Clinic) -> Json:
        resource: Json = {
            "resourceType": "Organization",
            "id": f"clinic-{clinic.pk}",
            "identifier": [{"system": "urn:tracker:clinic", "value": clinic.slug}],
            "active": True,
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                            "code": "prov",
                            "display": "Healthcare Provider",
                        }
                    ]
                }
            ],
            "name": clinic.name,
        }
        if clinic.phone:
            resource["telecom"] = [{"system": "phone", "value": clinic.phone, "use": "work"}]
        if clinic.address:
            resource["address"] = [{"text": clinic.address}]
        return resource

    def practitioner(self, clinician: Clinician) -> Json:
        """A clinician by name and staff number within the clinic; the role stays in the tracker."""
        user = clinician.user
        name: Json = {"text": str(clinician)}
        if user.last_name:
            name["family"] = user.last_name
        if user.first_name:
            name["given"] = [user.first_name]
        if clinician.title:
            name["prefix"] = [clinician.title]
        return {
            "resourceType": "Practitioner",
            "id": f"practitioner-{clinician.pk}",
            "identifier": [{"system": f"urn:tracker:clinic:{clinician.clinic.slug}:staff", "value": str(clinician.pk)}],
            "active": clinician.is_active,
            "name": [name],
        }

    def medication(self, rx: Prescription) -> Json:
        drug = rx.drug
        rxnorm = rxnorm_coding(drug.name, drug.rxnorm_code)  # verified codes only (tracker/fhir_codes.py)
        coding = [rxnorm] if rxnorm else []
        if drug.atc_code:
            coding.append({"system": ATC, "code": drug.atc_code, "display": drug.name})
        concept: Json = {"text": drug.display_name}
        if coding:
            concept["coding"] = coding
        return concept

    def route(self, route: str) -> Json:
        code, display = ROUTE_CODES.get(route, ("", Route(route).label))
        concept: Json = {"text": Route(route).label}
        if code:
            concept["coding"] = [{"system": SNOMED, "code": code, "display": display}]
        return concept

    def dose_quantity(self, rx: Prescription, amount: Decimal | None = None) -> Json:
        unit = "mg/kg" if rx.dose_unit == DoseUnit.MG_PER_KG else "mg"
        return self.quantity(amount or rx.dose, unit)

    def dosage(self, rx: Prescription, schedule: DoseSchedule) -> Json:
        """One dosage instruction per schedule, its timing in the patient's wall clock."""
        repeat: Json = {"boundsPeriod": {"start": self.day_start(schedule.start_date)}}
        if schedule.end_date:
            repeat["boundsPeriod"]["end"] = self.day_end(schedule.end_date)
        phase = f"{schedule.get_phase_display()}: " if schedule.phase else ""
        dosage: Json = {
            "text": f"{phase}{rx.dose.normalize():f} {rx.dose_unit} {schedule}",
            "route": self.route(rx.route),
            "doseAndRate": [{"doseQuantity": self.dose_quantity(rx)}],
        }
        if schedule.kind == DoseSchedule.Kind.PRN:
            dosage["asNeededBoolean"] = True
            if schedule.prn_max_doses_per_day:
                dosage["maxDosePerPeriod"] = {
                    "numerator": self.dose_quantity(rx, rx.dose * schedule.prn_max_doses_per_day),
                    "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
                }
        else:
            dosage["asNeededBoolean"] = False
            repeat.update(
                {
                    "frequency": len(schedule.times_of_day),
                    "period": schedule.interval_days if schedule.kind == DoseSchedule.Kind.EVERY_N_DAYS else 1,
                    "periodUnit": "d",
                    "timeOfDay": [f"{t}:00" for t in schedule.times_of_day],
                }
            )
            if schedule.kind == DoseSchedule.Kind.WEEKDAYS:
                # §8: a weekday regimen is so many doses per week (esketamine induction: 2 per 1 wk).
                repeat["frequency"] = len(schedule.times_of_day) * len(schedule.weekdays)
                repeat["periodUnit"] = "wk"
                repeat["dayOfWeek"] = [WEEKDAYS[d] for d in sorted(schedule.weekdays)]
            maximum = rx.maximum_for_patient()
            if maximum is not None and rx.drug.dose_basis == DoseBasis.DAY:
                dosage["maxDosePerPeriod"] = {
                    "numerator": self.dose_quantity(rx, maximum),
                    "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
                }
        dosage["timing"] = {"repeat": repeat}
        return dosage

    def medication_request(self, rx: Prescription) -> Json:
        self.requests[rx.pk] = rx
        resource: Json = {
            "resourceType": "MedicationRequest",
            "id": f"rx-{rx.pk}",
            "status": "entered-in-error" if rx.is_entered_in_error else RX_STATUS[rx.status],
            "intent": "order",
            "medicationCodeableConcept": self.medication(rx),
            "subject": self.subject,
            "authoredOn": self.instant(rx.created_at),
            "requester": self.practitioner_ref(rx.prescriber),
            # One instruction per schedule (a phase of a phased regimen), in date order.
            "dosageInstruction": [
                {"sequence": number, **self.dosage(rx, schedule)}
                for number, schedule in enumerate((s for s in rx.schedules.all() if not s.is_entered_in_error), start=1)
            ],
        }
        if rx.indication:
            resource["reasonCode"] = [{"text": rx.indication}]
        if rx.change_reason:
            resource["note"] = [{"text": rx.change_reason}]
        if rx.replaces_id:
            resource["priorPrescription"] = ref("MedicationRequest", rx.replaces_id)
        return resource

    def dose(self, event: DoseEvent) -> Json:
        """Staff-given doses are administrations; patient-reported ones are statements (§8)."""
        rx = event.prescription
        taken = event.outcome == DoseEvent.Outcome.TAKEN
        common: Json = {
            "medicationCodeableConcept": self.medication(rx),
            "subject": self.subject,
            "effectiveDateTime": self.instant(event.occurred_at),
        }
        # A skip's reason is the statement's statusReason (FHIR R4 MedicationStatement), not a note.
        notes = [event.note] if event.note else []
        if event.outside_clinic_report:
            notes.insert(0, "Reported as taken outside the clinic.")
        if notes:
            common["note"] = [{"text": n} for n in notes]
        if event.reporter == DoseEvent.Reporter.CLINICIAN:
            status = "completed" if taken else "not-done"
            resource: Json = {
                "resourceType": "MedicationAdministration",
                "id": f"dose-{event.pk}",
                "status": "entered-in-error" if event.is_entered_in_error else status,
                **common,
                "request": ref("MedicationRequest", rx.pk),
                "dosage": {"route": self.route(rx.route), "dose": self.dose_quantity(rx, event.amount)},
            }
            if not taken and event.skip_reason:
                resource["statusReason"] = [{"text": event.skip_reason}]
            return resource
        status = "completed" if taken else "not-taken"
        statement: Json = {
            "resourceType": "MedicationStatement",
            "id": f"dose-{event.pk}",
            "status": "entered-in-error" if event.is_entered_in_error else status,
            **common,
            "dateAsserted": self.instant(event.created_at),
            "informationSource": self.subject,
            "basedOn": [ref("MedicationRequest", rx.pk)],
            "dosage": [
                {"route": self.route(rx.route), "doseAndRate": [{"doseQuantity": self.dose_quantity(rx, event.amount)}]}
            ],
        }
        if not taken and event.skip_reason:
            statement["statusReason"] = [{"text": event.skip_reason}]
        return statement

    def session_period(self, session: InClinicSession) -> Json:
        """First device (else the record's start) to discharge."""
        start = session.first_device_at or session.created_at
        period: Json = {"start": self.instant(start)}
        if session.discharge_at and session.discharge_at >= start:
            period["end"] = self.instant(session.discharge_at)
        return period

    def encounter(self, session: InClinicSession) -> Json:
        """The clinic visit of a session: the context of its administration and vital signs."""
        code, display = ENCOUNTER_CLASS.get(session.care_setting, ENCOUNTER_CLASS["outpatient"])
        if session.is_entered_in_error:
            status = "entered-in-error"
        else:
            status = "in-progress" if session.status == InClinicSession.Status.STARTED else "finished"
        return {
            "resourceType": "Encounter",
            "id": f"encounter-{session.pk}",
            "status": status,
            "class": {"system": ACT_CODE, "code": code, "display": display},
            "type": [{"text": f"In-clinic {session.prescription.drug.display_name} session"}],
            "subject": self.subject,
            "participant": [{"individual": self.practitioner_ref(session.administered_by)}],
            "period": self.session_period(session),
            "serviceProvider": self.organization_ref(self.patient.clinic),
        }

    def session_vitals(self, session: InClinicSession) -> list[tuple[str, int, Json]]:
        """The session's BP readings (panel 85354-9) and lowest SpO2 (59408-5), each ``partOf`` the
        administration. A reading without its own time is dated by the session's period."""
        period = self.session_period(session)

        def observation(key: str, code: tuple[tuple[str, str], ...], at: dt.datetime | None) -> Json:
            resource: Json = {
                "resourceType": "Observation",
                "id": f"{key}-{session.pk}",
                "status": "entered-in-error" if session.is_entered_in_error else "final",
                "category": [
                    {"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
                ],
                "code": {
                    "coding": [{"system": LOINC, "code": c, "display": d} for c, d in code],
                    "text": code[-1][1],
                },
                "subject": self.subject,
                "encounter": ref("Encounter", session.pk),
                "partOf": [ref("Session", session.pk)],
                "performer": [self.practitioner_ref(session.administered_by)],
            }
            if at is not None:
                resource["effectiveDateTime"] = self.instant(at)
            else:
                resource["effectivePeriod"] = period
            return resource

        def mmhg(value: int) -> Json:
            return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}

        readings = (
            (
                "bp-before",
                "before dosing",
                session.bp_before_systolic,
                session.bp_before_diastolic,
                session.bp_before_at,
            ),
            (
                "bp-40min",
                "about 40 min after dosing",
                session.bp_40min_systolic,
                session.bp_40min_diastolic,
                session.bp_40min_at,
            ),
            (
                "bp-discharge",
                "at discharge",
                session.bp_discharge_systolic,
                session.bp_discharge_diastolic,
                session.discharge_at,
            ),
        )
        out: list[tuple[str, int, Json]] = []
        for key, when, systolic, diastolic, at in readings:
            if systolic is None or diastolic is None:
                continue
            resource = observation(key, (BP_PANEL,), at)
            resource["component"] = [
                {
                    "code": {"coding": [{"system": LOINC, "code": SYSTOLIC[0], "display": SYSTOLIC[1]}]},
                    "valueQuantity": mmhg(systolic),
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": DIASTOLIC[0], "display": DIASTOLIC[1]}]},
                    "valueQuantity": mmhg(diastolic),
                },
            ]
            resource["note"] = [{"text": f"Blood pressure {when}."}]
            out.append((key, session.pk, resource))
        if session.spo2_lowest is not None:
            resource = observation("spo2", SPO2_CODES, None)
            resource["valueQuantity"] = {"value": session.spo2_lowest, "unit": "%", "system": UCUM, "code": "%"}
            resource["note"] = [{"text": "Lowest SpO2 during the observation."}]
            out.append(("spo2", session.pk, resource))
        return out

    def session(self, session: InClinicSession) -> Json:
        """An in-clinic administration: observed from the first device to discharge (§8)."""
        rx = session.prescription
        status = {
            InClinicSession.Status.STARTED: "in-progress",
            InClinicSession.Status.COMPLETED: "completed",
            InClinicSession.Status.WITHHELD: "not-done",
        }[session.status]
        period = self.session_period(session)
        event = session.dose_event
        resource: Json = {
            "resourceType": "MedicationAdministration",
            "id": f"session-{session.pk}",
            "status": "entered-in-error" if session.is_entered_in_error else status,
            "medicationCodeableConcept": self.medication(rx),
            "subject": self.subject,
            "context": ref("Encounter", session.pk),
            "effectivePeriod": period,
            "performer": [{"actor": self.practitioner_ref(session.administered_by)}],
            "request": ref("MedicationRequest", rx.pk),
            "dosage": {
                "route": self.route(session.route),
                "dose": self.dose_quantity(rx, event.amount if event is not None else None),
            },
        }
        if session.status == InClinicSession.Status.WITHHELD and session.bp_decision_reason:
            resource["statusReason"] = [{"text": session.bp_decision_reason}]
        return resource

    def recorder(self, assessment: Assessment) -> Json:
        """Who entered the answers: a clinician as Practitioner, else the patient themself."""
        clinician = getattr(assessment.recorded_by, "clinician", None) if assessment.recorded_by_id else None
        return self.practitioner_ref(clinician) if clinician is not None else self.subject

    def answered_items(self, assessment: Assessment) -> list[tuple[str, str, Json]]:
        """(item LOINC code, item text, answer Coding) for each item in questionnaire order."""
        scale = scales.get_scale(assessment.instrument)
        labels = dict(scale.options)
        return [
            (code, text, {"system": LOINC, "code": ANSWER_CODES[int(value)], "display": labels[int(value)]})
            for code, text, value in zip(
                ITEM_CODES[assessment.instrument], scale.items, assessment.answers, strict=True
            )
        ]

    def questionnaire_response(self, assessment: Assessment) -> Json:
        """The item answers behind a score (§8): linkId "/<item LOINC>", answers as LOINC LA codes."""
        panel, _ = QUESTIONNAIRE_PANELS[assessment.instrument]
        resource: Json = {
            "resourceType": "QuestionnaireResponse",
            "id": f"answers-{assessment.pk}",
            "questionnaire": QUESTIONNAIRE_CANONICAL.format(panel),
            "status": "entered-in-error" if assessment.is_entered_in_error else "completed",
            "subject": self.subject,
            "authored": self.instant(assessment.completed_at),
            "author": self.recorder(assessment),
            "item": [
                {"linkId": f"/{code}", "text": text, "answer": [{"valueCoding": answer}]}
                for code, text, answer in self.answered_items(assessment)
            ],
        }
        if assessment.source == Assessment.Source.PATIENT:
            resource["source"] = self.subject
        return resource

    def observation(self, assessment: Assessment) -> Json:
        """The total, derived from its QuestionnaireResponse, each item a component, the band coded."""
        code, display = SCORE_CODES[assessment.instrument]
        performer = self.subject if assessment.source == Assessment.Source.PATIENT else self.recorder(assessment)
        band = assessment.band
        return {
            "resourceType": "Observation",
            "id": f"score-{assessment.pk}",
            "status": "entered-in-error" if assessment.is_entered_in_error else "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": self.subject,
            "effectiveDateTime": self.instant(assessment.completed_at),
            "performer": [performer],
            "valueInteger": assessment.total,
            "interpretation": [
                {
                    "coding": [
                        {
                            "system": SCORE_BAND_SYSTEM.format(assessment.instrument),
                            "code": band.replace(" ", "-"),
                            "display": band,
                        }
                    ],
                    "text": band,
                }
            ],
            "derivedFrom": [ref("QuestionnaireResponse", assessment.pk)],
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": item}], "text": text},
                    "valueCodeableConcept": {"coding": [answer], "text": answer["display"]},
                }
                for item, text, answer in self.answered_items(assessment)
            ],
        }

    def body_weight(self, measurement: WeightMeasurement) -> Json:
        code, display = BODY_WEIGHT
        resource: Json = {
            "resourceType": "Observation",
            "id": f"weight-{measurement.pk}",
            "status": "entered-in-error" if measurement.is_entered_in_error else "final",
            "category": [
                {"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
            ],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": self.subject,
            "effectiveDateTime": self.instant(measurement.measured_at),
            "valueQuantity": self.quantity(measurement.weight_kg, "kg"),
        }
        if measurement.note:
            resource["note"] = [{"text": measurement.note}]
        return resource

    def flag(self, flag: Flag) -> Json:
        """FHIR's Flag is active or inactive; the worklist's own state (open, acknowledged, resolved)
        goes in ``meta.tag``, and resolving ends the period."""
        period: Json = {"start": self.instant(flag.raised_at)}
        if flag.status == Flag.Status.RESOLVED and flag.resolved_at:
            period["end"] = self.instant(max(flag.resolved_at, flag.raised_at))
        return {
            "resourceType": "Flag",
            "id": f"flag-{flag.pk}",
            "meta": {
                "tag": [{"system": FLAG_STATUS_SYSTEM, "code": flag.status, "display": flag.get_status_display()}]
            },
            "status": "inactive" if flag.status == Flag.Status.RESOLVED else "active",
            "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}],
            "code": {
                "coding": [{"system": FLAG_KIND_SYSTEM, "code": flag.kind, "display": flag.get_kind_display()}],
                "text": f"{flag.get_severity_display()}: {flag.message}",
            },
            "subject": self.subject,
            "period": period,
            "author": {"display": "Treatment-course tracker"},
        }

    def newest_version(self, root: int) -> int:
        """The newest exported version of the course that starts at prescription ``root``."""
        newest = root
        replaced_by = {rx.replaces_id: pk for pk, rx in self.requests.items() if rx.replaces_id}
        while newest in replaced_by:
            newest = replaced_by[newest]
        return newest

    def detected_issue(self, flag: Flag) -> Json:
        """An interaction flag as a DetectedIssue (§8): the two courses' requests implicated (named
        by the flag's dedup key, ``esk.interaction:course:<root>:with:<root>``), and acknowledging
        and resolving as mitigations."""
        roots = [int(part) for part in flag.dedup_key.split(":") if part.isdigit()]
        implicated = [self.newest_version(root) for root in roots if root in self.requests]
        resource: Json = {
            "resourceType": "DetectedIssue",
            "id": f"issue-{flag.pk}",
            "status": "final",
            "code": {
                "coding": [{"system": ACT_CODE, "code": "DRG", "display": "Drug Interaction Alert"}],
                "text": flag.get_kind_display(),
            },
            "severity": DETECTED_ISSUE_SEVERITY[flag.severity],
            "patient": self.subject,
            "identifiedDateTime": self.instant(flag.raised_at),
            "detail": f"{flag.message} {flag.action}",
        }
        if implicated:
            resource["implicated"] = [ref("MedicationRequest", pk) for pk in implicated]
        mitigation = []
        for code, at, user, note in (
            ("acknowledged", flag.acknowledged_at, flag.acknowledged_by, ""),
            ("resolved", flag.resolved_at, flag.resolved_by, flag.resolution_note),
        ):
            if at is None:
                continue
            step: Json = {
                "action": {
                    "coding": [{"system": FLAG_STATUS_SYSTEM, "code": code, "display": code.capitalize()}],
                    "text": f"{code.capitalize()}: {note}" if note else code.capitalize(),
                },
                "date": self.instant(at),
            }
            clinician = getattr(user, "clinician", None) if user is not None else None
            if clinician is not None:
                step["author"] = self.practitioner_ref(clinician)
            mitigation.append(step)
        if mitigation:
            resource["mitigation"] = mitigation
        return resource

    # --- the bundle --------------------------------------------------------------------

    def bundle(self) -> Json:
        """Every resource of the course (eight queries, whatever the course length)."""
        p = self.patient
        prescriptions = (
            Prescription.objects.filter(patient=p)
            .select_related("drug", "prescriber__user", "prescriber__clinic", "patient")
            .prefetch_related(Prefetch("schedules", queryset=DoseSchedule.objects.order_by("start_date", "id")))
            .order_by("start_date", "id")
        )
        sessions = list(
            InClinicSession.objects.filter(patient=p)
            .select_related("prescription__drug", "administered_by__user", "administered_by__clinic", "dose_event")
            .order_by("created_at", "id")
        )
        events = (
            DoseEvent.objects.filter(patient=p)
            .exclude(pk__in=[s.dose_event_id for s in sessions if s.dose_event_id])
            .select_related("prescription__drug")
            .order_by("occurred_at", "id")
        )
        scores = (
            Assessment.objects.filter(patient=p, instrument__in=SCORE_CODES)
            .select_related("recorded_by__clinician__user", "recorded_by__clinician__clinic")
            .order_by("completed_at", "id")
        )
        weights = WeightMeasurement.objects.filter(patient=p).order_by("measured_at", "id")
        flags = (
            Flag.objects.filter(patient=p)
            .select_related(
                "acknowledged_by__clinician__user",
                "acknowledged_by__clinician__clinic",
                "resolved_by__clinician__user",
                "resolved_by__clinician__clinic",
            )
            .order_by("raised_at", "id")
        )
        resources = [
            ("Patient", p.pk, self.patient_resource()),
            *(("MedicationRequest", rx.pk, self.medication_request(rx)) for rx in prescriptions),
            *(
                entry
                for s in sessions
                for entry in (
                    ("Encounter", s.pk, self.encounter(s)),
                    ("Session", s.pk, self.session(s)),
                    *self.session_vitals(s),
                )
            ),
            *(("Dose", e.pk, self.dose(e)) for e in events),
            *(
                entry
                for a in scores
                for entry in (
                    ("QuestionnaireResponse", a.pk, self.questionnaire_response(a)),
                    ("Observation", a.pk, self.observation(a)),
                )
            ),
            *(("Weight", w.pk, self.body_weight(w)) for w in weights),
            *measurement_observations(self, p),
            *(("Flag", f.pk, self.flag(f)) for f in flags),
        ]
        resources += [
            ("DetectedIssue", f.pk, self.detected_issue(f)) for f in flags if f.kind == FlagKind.ESK_INTERACTION
        ]
        # The people and the clinic the records name, right after the Patient.
        resources[1:1] = [
            ("Organization", p.clinic.pk, self.organization(p.clinic)),
            *(("Practitioner", c.pk, self.practitioner(c)) for c in self.practitioners.values()),
        ]
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid5(NAMESPACE, f"bundle/{p.pk}/{timezone.now().isoformat()}")),
            "type": "collection",
            "timestamp": self.instant(timezone.now()),
            "entry": [
                {"fullUrl": full_url(kind, pk), "resource": with_narrative(with_profiles(resource))}
                for kind, pk, resource in resources
            ],
        }


def _summary(resource: Json) -> list[str]:
    """The few facts a reader needs first: what, value or dose, status, when."""
    what = (
        resource.get("code", {}).get("text")
        or resource.get("medicationCodeableConcept", {}).get("text")
        or (resource["name"] if isinstance(resource.get("name"), str) else None)
        or next((n.get("text") or n.get("family") for n in resource.get("name", []) if isinstance(n, dict)), None)
        or resource.get("questionnaire")
        or next((t.get("text") for t in resource.get("type", []) if isinstance(t, dict)), None)
    )
    parts = [resource["resourceType"], what or ""]
    if "valueInteger" in resource:
        parts.append(str(resource["valueInteger"]))
    if "valueQuantity" in resource:
        parts.append(f"{resource['valueQuantity']['value']} {resource['valueQuantity'].get('unit', '')}")
    parts += [
        f"{c['code']['coding'][0].get('display', '')} {c['valueQuantity']['value']} {c['valueQuantity']['unit']}"
        for c in resource.get("component", [])
        if "valueQuantity" in c
    ]
    parts += [d["text"] for d in resource.get("dosageInstruction", []) if d.get("text")]
    if "item" in resource:
        parts.append(f"{len(resource['item'])} answers")
    if "detail" in resource:
        parts.append(resource["detail"])
    if "status" in resource:
        parts.append(f"status {resource['status']}")
    when = next(
        (
            resource[k] if isinstance(resource[k], str) else resource[k].get("start")
            for k in ("effectiveDateTime", "effectivePeriod", "authoredOn", "authored", "identifiedDateTime", "period")
            if k in resource
        ),
        None,
    )
    if when:
        parts.append(when)
    if "birthDate" in resource:
        parts.append(f"born {resource['birthDate']}")
    return [p for p in parts if p]


def _codes(concept: Json | None, system: str = LOINC) -> set[str]:
    return {c.get("code") for c in (concept or {}).get("coding", []) if c.get("system") == system}


def _ucum(quantity: Json | None, units: frozenset[str]) -> bool:
    """A value US Core's vital signs accept: a number with UCUM system, code and a unit label."""
    q = quantity or {}
    return q.get("system") == UCUM and q.get("code") in units and "value" in q and bool(q.get("unit"))


def _category(resource: Json) -> set[str]:
    return {code for concept in resource.get("category", []) for code in _codes(concept, OBSERVATION_CATEGORY)}


def profiles_for(resource: Json) -> list[str]:
    """The profiles a resource meets, checked element by element here rather than assumed, so a
    record that lacks a required element is exported without the claim (docs/fhir.md lists them).

    - us-core-patient: identifier (system and value), a name with family or given, gender.
    - us-core-medicationrequest: status, intent, subject, requester (us-core-21 for an order) and
      an RxNorm coding of a term type US Core's medication value set takes (SCD, SCDF, ...; not an
      ingredient): the binding is extensible, but an IN code is in RxNorm yet outside the value set.
    - us-core-observation-screening-assessment: category survey, a LOINC code, subject, a value.
    - vital signs (R4 core and US Core): category vital-signs, the profile's LOINC code, subject,
      effective[x], the value in one of the profile's UCUM units (BP: both components in mm[Hg]).
    """
    kind = resource.get("resourceType")
    if kind == "Patient":
        ids = [i for i in resource.get("identifier", []) if i.get("system") and i.get("value")]
        names = [n for n in resource.get("name", []) if n.get("family") or n.get("given")]
        return [US_CORE_PATIENT] if ids and names and resource.get("gender") else []
    if kind == "MedicationRequest":
        required = all(resource.get(k) for k in ("status", "intent", "subject", "requester"))
        rxcuis = _codes(resource.get("medicationCodeableConcept"), RXNORM)
        coded = any(in_us_core_medication_codes(code) for code in rxcuis)
        return [US_CORE_MEDICATION_REQUEST] if required and coded else []
    if kind != "Observation" or not resource.get("subject") or not resource.get("status"):
        return []
    codes = _codes(resource.get("code"))
    if "survey" in _category(resource) and codes & {code for code, _ in SCORE_CODES.values()}:
        has_value = "valueInteger" in resource or "component" in resource
        return [US_CORE_SCREENING_ASSESSMENT] if has_value else []
    matched = [code for code in VITAL_SIGN_PROFILES if code in codes]
    if "vital-signs" not in _category(resource) or len(matched) != 1:
        return []
    base, us_core, units = VITAL_SIGN_PROFILES[matched[0]]
    if not ("effectiveDateTime" in resource or "effectivePeriod" in resource):
        return []
    if matched[0] == BP_PANEL[0]:
        parts = {c: comp for comp in resource.get("component", []) for c in _codes(comp.get("code"))}
        valued = all(c in parts and _ucum(parts[c].get("valueQuantity"), units) for c in BP_COMPONENTS)
    else:
        valued = _ucum(resource.get("valueQuantity"), units)
    if not valued:
        return []
    # US Core pulse oximetry needs 59408-5 beside 2708-6; the R4 oxygensat profile only 2708-6.
    if matched[0] == SPO2_CODES[0][0] and SPO2_CODES[1][0] not in codes:
        return [base]
    return [base, us_core]


def with_profiles(resource: Json) -> Json:
    """Declare in ``meta.profile`` the profiles the resource meets (and only those)."""
    profiles = profiles_for(resource)
    if profiles:
        resource["meta"] = {**resource.get("meta", {}), "profile": profiles}
    return resource


def with_narrative(resource: Json) -> Json:
    """Every resource carries a generated narrative (dom-6): a short xhtml div of its main facts."""
    if "text" not in resource:
        body = escape(" · ".join(_summary(resource)))
        resource["text"] = {"status": "generated", "div": f'<div xmlns="{XHTML}"><p>{body}</p></div>'}
    return resource


def operation_outcome(diagnostics: str, *, status_code: int) -> Json:
    """A refusal of the FHIR endpoint as FHIR clients read it: one error issue, its reason in words."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": ISSUE_TYPES.get(status_code, "processing"),
                "diagnostics": diagnostics,
            }
        ],
    }


def patient_bundle(patient: Patient) -> Json:
    """The patient's whole course as a FHIR R4 Bundle (collection), as plain JSON."""
    return Exporter(patient).bundle()


# --- Clinical measurements (height, BP, pulse, blood tests) and BMI, as Observations ----------


def measurement_observations(exporter: Exporter, patient: Patient) -> list[tuple[str, int, Json]]:
    """Each clinical measurement as an Observation with its LOINC code and UCUM unit, and a BMI
    Observation (LOINC 39156-5, derived from the weight and the height) beside each weight that
    has a height on record. Two queries: the measurements, and the weights for BMI.

    Blood pressure is the vital-signs BP panel (85354-9) with systolic and diastolic components.
    A reading in error is exported with status entered-in-error, as the other records are.
    """
    from tracker.models import ClinicalMeasurement
    from tracker.models.measurements import (
        BMI_CODE,
        BP_PANEL,
        DIASTOLIC,
        MEASUREMENT_KINDS,
        MeasurementKind,
        body_mass_index,
    )
    from tracker.monitoring import height_for

    def coding(code: str, display: str) -> Json:
        return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}

    def quantity(value: Decimal, unit: str, unit_label: str) -> Json:
        return {"value": exporter.number(value), "unit": unit_label, "system": UCUM, "code": unit}

    def category(vital: bool) -> list[Json]:
        code, display = ("vital-signs", "Vital Signs") if vital else ("laboratory", "Laboratory")
        return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}]

    measurements = list(ClinicalMeasurement.objects.filter(patient=patient).order_by("measured_at", "id"))
    out: list[tuple[str, int, Json]] = []
    for m in measurements:
        spec = MEASUREMENT_KINDS[m.kind]
        resource: Json = {
            "resourceType": "Observation",
            "id": f"measurement-{m.pk}",
            "status": "entered-in-error" if m.is_entered_in_error else "final",
            "category": category(spec.vital_sign),
            "subject": exporter.subject,
            "effectiveDateTime": exporter.instant(m.measured_at),
        }
        if m.kind == MeasurementKind.BLOOD_PRESSURE:
            resource["code"] = coding(*BP_PANEL)
            resource["component"] = [
                {"code": coding(spec.loinc, spec.display), "valueQuantity": quantity(m.value, spec.unit, "mmHg")},
                {"code": coding(*DIASTOLIC), "valueQuantity": quantity(m.diastolic, spec.unit, "mmHg")},
            ]
        else:
            resource["code"] = coding(spec.loinc, spec.display)
            resource["valueQuantity"] = quantity(m.value, spec.unit, spec.unit_label)
        if m.note:
            resource["note"] = [{"text": m.note}]
        out.append(("Measurement", m.pk, resource))
    heights = [m for m in measurements if m.kind == MeasurementKind.HEIGHT and not m.is_entered_in_error]
    weights = WeightMeasurement.objects.current().filter(patient=patient).order_by("measured_at", "id")
    for w in weights if heights else ():
        height = height_for(heights, w.measured_at)
        if height is None:
            continue
        bmi = body_mass_index(w.weight_kg, height)
        resource = {
            "resourceType": "Observation",
            "id": f"bmi-{w.pk}",
            "status": "final",
            "category": category(True),
            "code": coding(*BMI_CODE),
            "subject": exporter.subject,
            "effectiveDateTime": exporter.instant(w.measured_at),
            "valueQuantity": quantity(bmi, "kg/m2", "kg/m2"),
            "derivedFrom": [ref("Weight", w.pk)],
        }
        out.append(("BMI", w.pk, resource))
    return out
