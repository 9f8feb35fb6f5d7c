"""The tracker's data model, one module per area, re-exported here."""

from tracker.models.access import PatientAccess
from tracker.models.assessments import Assessment, Instrument, SideEffectReport
from tracker.models.base import ClinicalDeletionError, ClinicalRecord
from tracker.models.clinics import Clinic, Clinician, CrisisContact
from tracker.models.doses import DoseEvent, PlannedDose
from tracker.models.drugs import DoseBasis, DoseUnit, Drug, DrugClass, Route
from tracker.models.flags import Flag, FlagFact, FlagKind, Severity
from tracker.models.measurements import ClinicalMeasurement, WeightMeasurement
from tracker.models.notifications import DigestDelivery
from tracker.models.patients import AdministrativeGender, Patient, PortalLanguage, validate_timezone
from tracker.models.prescriptions import DoseSchedule, Prescription
from tracker.models.reminders import DoseReminder, PrescriptionReminder, PushSubscription, ReminderSettings
from tracker.models.sessions import InClinicSession, SessionAddendum

__all__ = [
    "AdministrativeGender",
    "Assessment",
    "Clinic",
    "ClinicalDeletionError",
    "ClinicalMeasurement",
    "ClinicalRecord",
    "Clinician",
    "CrisisContact",
    "DigestDelivery",
    "DoseBasis",
    "DoseEvent",
    "DoseReminder",
    "DoseSchedule",
    "DoseUnit",
    "Drug",
    "DrugClass",
    "Flag",
    "FlagFact",
    "FlagKind",
    "InClinicSession",
    "Instrument",
    "Patient",
    "PatientAccess",
    "PlannedDose",
    "PortalLanguage",
    "Prescription",
    "PrescriptionReminder",
    "PushSubscription",
    "ReminderSettings",
    "Route",
    "SessionAddendum",
    "Severity",
    "SideEffectReport",
    "WeightMeasurement",
    "validate_timezone",
]
