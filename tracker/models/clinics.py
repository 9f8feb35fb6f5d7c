"""Clinics and the clinicians who work in them."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords


def validate_timezone(value: str) -> None:
    """Accept only IANA zone names (``Europe/London``), which carry daylight-saving rules."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(value)s is not a known time zone. Use a name such as Europe/London or America/New_York.",
            params={"value": value},
            code="invalid_timezone",
        )


class Clinic(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    rems_certification = models.CharField(
        "Spravato REMS certification",
        max_length=60,
        blank=True,
        help_text="§1 setting: the REMS certification of this healthcare setting (its number or reference). "
        "Outpatient esketamine sessions need it on record.",
    )
    crisis_guidance = models.TextField(
        blank=True,
        help_text="Shown to patients whose answers suggest thoughts of self-harm: the clinic's "
        "own crisis line and local emergency number.",
    )
    timezone = models.CharField(
        max_length=64,
        default="Europe/London",
        validators=[validate_timezone],
        help_text="The clinic's own time zone (IANA name): every time in the clinicians' workspace is "
        "shown and typed in it, and stored in UTC.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


PHONE_NUMBER = RegexValidator(
    r"^\+?[0-9][0-9 ]{1,28}[0-9]$",
    "Enter the number as it is dialled: digits and spaces, optionally starting with +, e.g. 116 123.",
)


class CrisisContact(models.Model):
    """A number a patient in crisis can tap to call: the clinic's duty line, a national helpline.

    Shown, each as a tel: link, after an answer that suggests thoughts of self-harm, with the
    clinic's own phone number and its crisis_guidance text.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="crisis_contacts")
    label = models.CharField(max_length=120, help_text="Who answers and when, e.g. Samaritans, any time.")
    number = models.CharField(max_length=30, validators=[PHONE_NUMBER])
    position = models.PositiveSmallIntegerField(default=0, help_text="Lower numbers are shown first.")

    class Meta:
        ordering = ["clinic", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "number"], name="tracker_crisiscontact_one_per_number"),
            models.CheckConstraint(
                condition=models.Q(number__regex=r"^\+?[0-9][0-9 ]{1,28}[0-9]$"),
                name="tracker_crisiscontact_number_dialable",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.number}"

    @property
    def tel(self) -> str:
        """The number for a tel: link, without spaces."""
        return self.number.replace(" ", "")


class Clinician(models.Model):
    """A staff user's membership of one clinic, with the role that sets their permissions."""

    class Role(models.TextChoices):
        PRESCRIBER = "prescriber", "Prescriber (psychiatrist, nurse prescriber)"
        NURSE = "nurse", "Nurse"
        MANAGER = "manager", "Clinic manager"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clinician")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="clinicians")
    role = models.CharField(max_length=20, choices=Role.choices)
    title = models.CharField(max_length=40, blank=True, help_text="e.g. Dr, RN")
    is_active = models.BooleanField(default=True)

    # Every change of role, clinic or active state, with the old and new values and who made it
    # (tracker/services/clinicians.py is the only writer).
    history = HistoricalRecords()

    class Meta:
        ordering = ["user__last_name", "user__first_name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["prescriber", "nurse", "manager"]),
                name="tracker_clinician_role_valid",
            ),
        ]

    def __str__(self) -> str:
        full_name = self.user.get_full_name() or self.user.get_username()
        return f"{self.title} {full_name}".strip()

    @property
    def can_prescribe(self) -> bool:
        return self.role == self.Role.PRESCRIBER
