"""Patients: who they are, which clinic cares for them, and the timezone they live in."""

from __future__ import annotations

import zoneinfo
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from tracker.models.base import ClinicalRecord
from tracker.models.clinics import Clinic, Clinician, validate_timezone  # re-exported: migrations name it here


class AdministrativeGender(models.TextChoices):
    """FHIR R4 AdministrativeGender: the gender used for administration, as the record holds it.

    Not sex assigned at birth and not gender identity; US Core asks for exactly this value set.
    """

    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class PortalLanguage(models.TextChoices):
    """The languages the patient portal is translated into (docs/i18n.md says how to add one)."""

    ENGLISH = "en", "English"
    SPANISH = "es", "Español"


class Patient(ClinicalRecord):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    record_number = models.CharField(
        max_length=40, help_text="The clinic's own medical record number; unique within the clinic."
    )
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    timezone = models.CharField(
        max_length=64,
        default="Europe/London",
        validators=[validate_timezone],
        help_text="Where the patient lives (IANA name). Dose times are kept in this zone's wall-clock time.",
    )
    weight_kg = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Needed for weight-based doses such as IV ketamine.",
    )
    rems_enrolled_on = models.DateField(
        null=True,
        blank=True,
        verbose_name="Spravato REMS enrolment date",
        help_text="§1 setting: an outpatient esketamine patient is enrolled in the REMS before the first session.",
    )
    gender = models.CharField(
        max_length=8,
        choices=AdministrativeGender.choices,
        default=AdministrativeGender.UNKNOWN,
        help_text="Administrative gender as the clinic records it (FHIR AdministrativeGender).",
    )
    language = models.CharField(
        max_length=8,
        choices=PortalLanguage.choices,
        default=PortalLanguage.ENGLISH,
        verbose_name="portal language",
        help_text="The language the patient portal and the patient's reminders use.",
    )
    email = models.EmailField(blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="patient",
        help_text="The patient's own login to the portal, if they have one.",
    )
    responsible_clinician = models.ForeignKey(
        Clinician, null=True, blank=True, on_delete=models.PROTECT, related_name="patients"
    )
    is_active = models.BooleanField(default=True, help_text="Untick when the patient is discharged.")

    history = HistoricalRecords()

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "record_number"], name="tracker_patient_record_number_unique_per_clinic"
            ),
            models.CheckConstraint(
                condition=models.Q(weight_kg__isnull=True) | models.Q(weight_kg__gt=0),
                name="tracker_patient_weight_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(gender__in=AdministrativeGender.values),
                name="tracker_patient_gender_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(language__in=PortalLanguage.values),
                name="tracker_patient_language_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.record_number})"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def age_on(self, day: date) -> int:
        before_birthday = (day.month, day.day) < (self.date_of_birth.month, self.date_of_birth.day)
        return day.year - self.date_of_birth.year - before_birthday

    def clean(self) -> None:
        super().clean()
        if self.weight_kg is not None and self.weight_kg <= 0:
            raise ValidationError({"weight_kg": "Weight must be more than 0 kg."})
        if self.responsible_clinician_id and self.clinic_id:
            if self.responsible_clinician.clinic_id != self.clinic_id:
                raise ValidationError(
                    {"responsible_clinician": "The responsible clinician must work at the patient's clinic."}
                )
