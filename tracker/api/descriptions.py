"""Each API operation's own description in the OpenAPI schema: what it does, who may call it, its refusals.

Without these, drf-spectacular falls back to the viewset's docstring (or a mixin's), so several
operations shared one text that described none of them (issue 19). ``described`` attaches the
texts to a viewset by action name with ``extend_schema_view``; tests/test_api_schema.py checks
that every operation has a description and that no two share one.

Who may call: "clinicians" are active clinic staff, scoped to their own clinic's patients; a
write also needs their role's model permission, as in the admin. "Patients" see only their own
records. A record outside the caller's reach answers 404, like a missing one. The error bodies
and limits (page size, ids, dates) are documented on every operation by tracker.api.schema.
"""

from __future__ import annotations

from typing import TypeVar

from drf_spectacular.utils import extend_schema, extend_schema_view

V = TypeVar("V", bound=type)

_IN_ERROR = (
    "Marks this {record} as entered in error, with the reason: it leaves current care (lists, charts, "
    "sweeps) but is never deleted, and the change is kept in its history. Clinicians whose role may change "
    "{records}; a patient gets 403. Refused (400): an empty `reason`, or a {record} already marked."
)

OPERATIONS: dict[str, dict[str, str]] = {
    "PatientViewSet": {
        "list": "A page of the caller's patients: a clinician's whole clinic, or a patient's own record "
        "only. Filter by record number, active status or responsible clinician. Each patient on the page "
        "is written to the access log (one row each).",
        "retrieve": "One patient's demographic record (name, date of birth, gender, time zone, portal "
        "language); the read is written to the access log. Clinicians of the patient's clinic, or the patient "
        "themselves; anyone else gets 404.",
    },
    "DrugViewSet": {
        "list": "The drug catalogue shared by every clinic: names, classes, ATC and RxNorm codes (the RxNorm code "
        "the FHIR export sends, blank where none is verified), dose units and ranges, routes, and whether "
        "the drug is given only at the clinic. Use it to find a drug's id "
        "for prescribing. Any clinician or patient.",
        "retrieve": "One drug of the catalogue: its codes, dose unit, usual range and maximum, routes and "
        "clinic-only marker. "
        "Any clinician or patient.",
    },
    "DoseScheduleViewSet": {
        "list": "The dose schedules (times of day, weekdays, intervals, phases) of the caller's prescriptions. "
        "Filter by prescription, patient or kind. Clinicians see their clinic's; a patient sees their own.",
        "retrieve": "One dose schedule: when a prescription's doses fall (times in the patient's zone) and "
        "over which dates. Clinicians of the clinic, or the patient.",
    },
    "PlannedDoseViewSet": {
        "list": "The planned doses the schedules produced (due instants in UTC) with their status (pending, "
        "taken, skipped, missed, cancelled). Filter by patient, prescription, status or a `due_at` range. "
        "Clinicians of the clinic, or the patient's own.",
        "retrieve": "One planned dose: when it was due and what became of it. Clinicians of the clinic, or "
        "the patient.",
    },
    "PrescriptionViewSet": {
        "list": "Prescriptions as versions: a dose change makes a new version, linked by `replaces` / "
        "`replaced_by`. Filter by patient, drug, status or a `start_date` range. Clinicians see their "
        "clinic's; a patient sees their own.",
        "retrieve": "One prescription version with its schedules, dose, indication and status. Clinicians of "
        "the clinic, or the patient.",
        "create": "Prescribes a drug with its regimen and plans the doses. Prescribers only (a nurse or a "
        "patient gets 403). Refused (400, naming the field): a dose, unit or route the drug does not take, "
        "a regimen that does not fit the drug (under `regimen`), a day's total over the drug's maximum, or "
        "dates outside 1900-2200.",
        "preview": "Answers the next planned dose times a prescription would have, in the patient's zone, "
        "saving nothing. Prescribers only. Refused (400) for the same reasons as prescribing.",
        "change_dose": "Changes the dose from an effective date: the current version ends and a new version "
        "starts, linked by `replaces`. Prescribers only. Refused (400): a prescription that is not active, a "
        "dose the drug does not take, an effective date before its start, or no `reason`.",
        "reschedule": "Gives the same dose new times or days from today (in the patient's zone); planned "
        "doses not yet due are replanned. Prescribers only. Refused (400): a regimen that does not fit the "
        "drug, or no `reason`.",
        "stop": "Stops the prescription on an end date; planned doses after it are cancelled. Prescribers "
        "only. Refused (400): a prescription that is not active, "
        "or no `reason`.",
        "entered_in_error": _IN_ERROR.format(record="prescription", records="prescriptions"),
    },
    "DoseEventViewSet": {
        "list": "Doses taken or skipped, newest first, with how each stood against its plan (`timing`: early, "
        "on time, late, unplanned, or blank for a skipped dose). Filter by patient, prescription, outcome, "
        "location or an `occurred_at` range. Clinicians of the clinic, or the patient's own.",
        "retrieve": "One dose event: when it was taken or skipped, by whom it was reported, and the planned "
        "dose it counts as. Clinicians of the clinic, or the patient.",
        "create": "Logs a dose taken (or skipped, with `skip_reason`), matched to the planned dose it "
        "counts as. Patients log their own; clinicians whose role may add doses log for their clinic's "
        "patients. Refused (400, naming the field): a time in the future or without an offset, a patient's "
        "time too long ago, a skip without a reason, or a clinic-only drug logged by a patient (on "
        "`prescription`; report it with the outside-clinic report instead). With `client_key` it is "
        "idempotent: the same key sent again (a retry) answers 201 with the event already recorded, not a "
        "second one; a key already used for another medicine of the patient is refused (400, on `client_key`).",
        "outside_clinic_report": "Reports that a clinic-only drug (esketamine) was taken outside the clinic. "
        "Kept as a dose event marked as such and raises a critical flag for the care team. Patients for "
        "themselves, or clinicians. Refused (400): a drug that is not clinic-only, or a time in the future.",
        "entered_in_error": _IN_ERROR.format(record="dose event", records="dose events"),
    },
    "AssessmentViewSet": {
        "list": "Questionnaire scores (PHQ-9, GAD-7, MADRS...) with their answers, totals and severity "
        "bands, newest first. Filter by patient, instrument, source or a `completed_at` range. Clinicians of "
        "the clinic, or the patient's own.",
        "retrieve": "One questionnaire with its answers, total and band. Clinicians of the clinic, or the patient.",
        "create": "Submits a questionnaire's answers, one per question in order; the server scores it and "
        "may raise flags (a self-harm answer on PHQ-9 question 9 raises one at once). Patients submit their "
        "own (always patient-reported); clinicians for their clinic's patients. Refused (400): a missing or "
        "out-of-range answer, named by question number (from 1) under `answers`; a time in the future; a "
        "clinician-rated scale sent by a patient.",
        "entered_in_error": _IN_ERROR.format(record="questionnaire", records="questionnaires"),
    },
    "SideEffectReportViewSet": {
        "list": "Side effects reported, with their severity and onset, newest first. Filter by patient, "
        "prescription, severity, effect or a `reported_at` range. Clinicians of the clinic, or the patient's own.",
        "retrieve": "One side-effect report. Clinicians of the clinic, or the patient.",
        "create": "Reports a side effect from the catalogue (or 'other' with a description), for the side-effect "
        "sweep to judge. Patients report their own; clinicians for their clinic's patients. Refused (400, "
        "naming the field): an effect not in the catalogue, 'other' without a description, another "
        "patient's prescription, or an onset date in the future.",
        "entered_in_error": _IN_ERROR.format(record="side-effect report", records="side-effect reports"),
    },
    "InClinicSessionViewSet": {
        "list": "In-clinic (esketamine) sessions: vitals, the dose decision, monitoring and discharge, newest "
        "first. Filter by patient, prescription, status or a `first_device_at` range. Clinicians of the "
        "clinic, or the patient's own.",
        "retrieve": "One in-clinic session with its addenda and the warnings of its last step. Clinicians of "
        "the clinic, or the patient.",
        "create": "Starts a session from a planned session or a prescription, optionally with the pre-dose "
        "blood pressure. Clinicians only (a patient gets 403). Refused (400, naming the field): a "
        "prescription, planned session or clinician of another clinic, a prescription not active or not of a "
        "clinic-only drug, or a planned session already recorded.",
        "partial_update": "Records the session's next steps (vitals, decision, dose, monitoring, discharge), "
        "applied in clinical order with the admin's checks. Clinicians only. Refused (400, naming the "
        "field): a step out of order or out of range, a reason without a decision, or a change to a "
        "signed-off session without `addendum_reason`.",
        "sign_off": "Signs the session off once every required field is recorded; afterwards only addenda "
        "change it. Clinicians only. Refused (400): the fields still missing, named, or a session already "
        "signed off.",
        "entered_in_error": _IN_ERROR.format(record="session", records="sessions"),
    },
    "WeightMeasurementViewSet": {
        "list": "Weights in kilograms, newest first; the latest is the patient's current weight. Filter by "
        "patient or a `measured_at` range. Clinicians of the clinic, or the patient's own.",
        "retrieve": "One weight measurement. Clinicians of the clinic, or the patient.",
        "create": "Records a weight (now, unless `measured_at` is given); a gain beyond the metabolic "
        "threshold raises a flag on the next sweep. Clinicians only (a patient gets 403). Refused (400): a "
        "weight outside the plausible range, or a time in the future.",
        "entered_in_error": _IN_ERROR.format(record="weight", records="weights"),
    },
    "ClinicalMeasurementViewSet": {
        "list": "Height, blood pressure, pulse and blood tests, newest first. Filter by patient, kind or a "
        "`measured_at` range. Clinicians of the clinic, or the patient's own.",
        "retrieve": "One clinical measurement with its value and unit. Clinicians of the clinic, or the patient.",
        "create": "Records a measurement of one kind with the values that kind needs (both pressures for "
        "blood pressure), optionally with the `unit` the value was typed in (glucose and lipids also take "
        "mmol/L, converted to the kind's unit). Clinicians only (a patient gets 403). Refused (400, naming the "
        "field): a value out of range or one the kind does not take, a `unit` the kind has not (naming the "
        "units it has), or a time in the future.",
        "entered_in_error": _IN_ERROR.format(record="measurement", records="measurements"),
    },
    "FlagViewSet": {
        "list": "The clinicians' worklist: flags the sweeps and reports raised, most severe first, with the "
        "facts behind each. Filter by patient, status, kind, severity or a `raised_at` range. Clinicians "
        "only (a patient gets 403).",
        "retrieve": "One flag with its facts, who acknowledged or resolved it and when. Clinicians only.",
        "acknowledge": "Acknowledges an open flag: a clinician is on it. Clinicians whose role may change "
        "flags (a clinic manager gets 403). Refused (400): a flag that is not open.",
        "resolve": "Resolves a flag with a note; it leaves the worklist and is kept. Clinicians whose role "
        "may change flags. Refused (400): no `note` on an urgent or critical flag (on `note`), or a flag "
        "already resolved.",
    },
}


def described(viewset: V) -> V:
    """Give each of ``viewset``'s operations its own description from ``OPERATIONS``."""
    texts = OPERATIONS[viewset.__name__]
    return extend_schema_view(**{action: extend_schema(description=text) for action, text in texts.items()})(viewset)
