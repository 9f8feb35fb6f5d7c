"""Body measurements: a patient's weight over time.

``Patient.weight_kg`` is the current weight (IV ketamine is dosed on it); this table is the
history behind it, which antipsychotic monitoring judges (clinical-reference §5
antipsychotic_metabolic). Record weights with ``tracker.services.measurements.record_weight``,
which keeps the two in step.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from tracker.models.base import ClinicalRecord
from tracker.models.patients import Patient

# A plausibility range, not a clinical threshold: it catches a slipped digit or a value
# typed in grams or pounds-times-ten, and stays wide enough for any adult or older child.
WEIGHT_MIN_KG = Decimal("10")
WEIGHT_MAX_KG = Decimal("400")
WEIGHT_RANGE_MESSAGE = (
    f"Weight must be between {WEIGHT_MIN_KG:f} and {WEIGHT_MAX_KG:f} kg. Check the number, and that it is in kilograms."
)


def validate_weight_kg(value: Decimal) -> None:
    """Refuse weights outside the plausible range, in plain words (the constraint says it too)."""
    if value is not None and not WEIGHT_MIN_KG <= value <= WEIGHT_MAX_KG:
        raise ValidationError(WEIGHT_RANGE_MESSAGE, code="weight_out_of_range")


class WeightMeasurement(ClinicalRecord):
    """One body weight, measured at a moment; wrong ones are marked entered in error."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="weights")
    measured_at = models.DateTimeField(help_text="When the patient was weighed.")
    weight_kg = models.DecimalField(
        "weight (kg)", max_digits=5, decimal_places=1, validators=[validate_weight_kg], help_text="In kilograms."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True, help_text="Anything that affects the reading (e.g. weighed in clothes).")

    history = HistoricalRecords()

    class Meta:
        ordering = ["-measured_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight_kg__gte=WEIGHT_MIN_KG, weight_kg__lte=WEIGHT_MAX_KG),
                name="tracker_weight_in_range",
                violation_error_message=WEIGHT_RANGE_MESSAGE,
            ),
        ]
        indexes = [
            # The monitoring sweep and the timeline read one patient's weights in time order.
            models.Index(fields=["patient", "measured_at"], name="tracker_weight_patient_time"),
        ]

    def __str__(self) -> str:
        return f"{self.weight_kg} kg on {self.measured_at:%Y-%m-%d}"
