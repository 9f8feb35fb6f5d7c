"""Body measurements: a patient's weight over time, and the other clinical measurements.

``Patient.weight_kg`` is the current weight (IV ketamine is dosed on it); this table is the
history behind it, which antipsychotic monitoring judges (clinical-reference §5
antipsychotic_metabolic). Record weights with ``tracker.services.measurements.record_weight``,
which keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from tracker import clinical
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


# --- Clinical measurements: height, blood pressure, pulse, glucose, HbA1c, lipids -------------
#
# One table for every kind rather than a model per kind: each is one number (BP a pair) with a
# unit, a time and who took it, and §5 antipsychotic_metabolic plans them together. The kind
# fixes the LOINC code, the UCUM unit and the plausible range (``MEASUREMENT_KINDS``), so the
# monitoring schedules, the API and the FHIR export read one catalogue. Weights stay in their
# own table: ``Patient.weight_kg`` (IV ketamine dosing) is kept in step with it.
#
# LOINC sources: the vital signs (height, BMI, BP panel, systolic, diastolic, heart rate) are
# [F] the FHIR R4 vital-signs value set (hl7.org/fhir/R4/valueset-observation-vitalsignresult.html).
# The laboratory codes are [W]: corroborated only in public code (US-Core-style lab tables and an
# eCQM value set), so verify them at loinc.org before release. All are the mass-concentration
# codes (mg/dL, %); a laboratory reporting mmol/L (or mmol/mol HbA1c) needs other LOINC codes.
# Glucose and lipids typed in mmol/L are converted to mg/dL on entry (``KindSpec.other_units``), so
# the stored value, its LOINC code and its UCUM unit stay the mass-concentration ones. HbA1c in
# IFCC mmol/mol is not offered: it is not a factor of % (mmol/mol = 10.929 × (% − 2.15)).


class MeasurementKind(models.TextChoices):
    HEIGHT = "height", "Height"
    BLOOD_PRESSURE = "blood_pressure", "Blood pressure"
    PULSE = "pulse", "Pulse"
    FASTING_GLUCOSE = "fasting_glucose", "Fasting glucose"
    HBA1C = "hba1c", "HbA1c"
    TOTAL_CHOLESTEROL = "total_cholesterol", "Total cholesterol"
    LDL = "ldl", "LDL cholesterol"
    HDL = "hdl", "HDL cholesterol"
    TRIGLYCERIDES = "triglycerides", "Triglycerides"


@dataclass(frozen=True)
class KindSpec:
    """What a kind of measurement is: its codes, its unit, and the range a real reading falls in.

    The ranges are plausibility checks, not clinical thresholds: they catch a slipped digit or a
    value in another unit (a glucose in mmol/L typed where mg/dL is asked), and stay wide enough
    for any real patient.
    """

    loinc: str
    display: str
    unit: str  # UCUM, as FHIR's valueQuantity.code
    unit_label: str  # as a clinician reads it
    low: Decimal
    high: Decimal
    vital_sign: bool  # FHIR category vital-signs, else laboratory
    # Other units a clinician may type it in: (unit label, the ``tracker.clinical`` key of how many
    # of the stored unit one of it is).
    other_unit_keys: tuple[tuple[str, str], ...] = ()

    @property
    def other_units(self) -> tuple[tuple[str, Decimal], ...]:
        """(unit label, factor) for each other unit, the factor read from ``tracker.clinical`` now."""
        return tuple((label, Decimal(str(clinical.get(key)))) for label, key in self.other_unit_keys)

    @property
    def range_text(self) -> str:
        return f"between {self.low:f} and {self.high:f} {self.unit_label}"

    @property
    def unit_labels(self) -> tuple[str, ...]:
        """Every unit it may be entered in, the stored one first."""
        return (self.unit_label, *(label for label, _factor in self.other_units))

    def factor(self, unit: str) -> Decimal | None:
        """How many of the stored unit one ``unit`` is (1 for the stored unit); None for a unit it has not."""
        if unit.casefold() == self.unit_label.casefold():
            return Decimal(1)
        return next((f for label, f in self.other_units if label.casefold() == unit.casefold()), None)

    def label_of(self, unit: str) -> str:
        """The unit as written here ('mmol/L' for 'MMOL/L'), for a unit the kind has."""
        return next(label for label in self.unit_labels if label.casefold() == unit.casefold())

    def range_text_in(self, unit: str) -> str:
        """The plausible range in ``unit``, rounded inwards so every value it names passes."""
        factor = self.factor(unit)
        if factor is None or factor == 1:
            return self.range_text
        step = Decimal("0.01")
        low = (self.low / factor).quantize(step, rounding=ROUND_CEILING).normalize()
        high = (self.high / factor).quantize(step, rounding=ROUND_FLOOR).normalize()
        return f"between {low:f} and {high:f} {self.label_of(unit)}"

    def to_stored(self, value: Decimal, unit: str) -> Decimal:
        """``value`` typed in ``unit`` (which the kind has) in the stored unit, to the column's 2 places."""
        factor = self.factor(unit)
        if factor is None:  # callers check the unit first (``unknown_unit_message``)
            raise ValueError(f"not a unit of this kind: {unit!r}")
        return (value * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def in_other_units(self, value: Decimal) -> str:
        """'5.2 mmol/L': a stored value in the other units, for readers used to them ('' for none)."""
        return ", ".join(
            f"{(value / factor).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP).normalize():f} {label}"
            for label, factor in self.other_units
        )


# mg/dL per mmol/L: cited keys in ``tracker.clinical`` (GLUCOSE_MG_DL_PER_MMOL_L [W],
# CHOLESTEROL_MG_DL_PER_MMOL_L and TRIGLYCERIDES_MG_DL_PER_MMOL_L [F]), read when used.
# UK laboratories report glucose and lipids in mmol/L; the stored unit stays mg/dL (the LOINC
# mass-concentration codes above).


MEASUREMENT_KINDS: dict[str, KindSpec] = {
    MeasurementKind.HEIGHT: KindSpec(
        "8302-2", "Body height", "cm", "cm", Decimal("50"), Decimal("250"), vital_sign=True
    ),  # [F] FHIR vital signs
    # Blood pressure: ``value`` is the systolic pressure, ``diastolic`` the other half of the pair.
    MeasurementKind.BLOOD_PRESSURE: KindSpec(
        "8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg", Decimal("50"), Decimal("300"), vital_sign=True
    ),  # [F] FHIR vital signs
    MeasurementKind.PULSE: KindSpec(
        "8867-4", "Heart rate", "/min", "beats per minute", Decimal("20"), Decimal("250"), vital_sign=True
    ),  # [F] FHIR vital signs
    MeasurementKind.FASTING_GLUCOSE: KindSpec(
        "1558-6",
        "Fasting glucose [Mass/volume] in Serum or Plasma",
        "mg/dL",
        "mg/dL",
        Decimal("20"),
        Decimal("1000"),
        vital_sign=False,
        other_unit_keys=(("mmol/L", "GLUCOSE_MG_DL_PER_MMOL_L"),),
    ),  # [W]
    MeasurementKind.HBA1C: KindSpec(
        "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%", Decimal("3"), Decimal("20"), vital_sign=False
    ),  # [W]
    MeasurementKind.TOTAL_CHOLESTEROL: KindSpec(
        "2093-3",
        "Cholesterol [Mass/volume] in Serum or Plasma",
        "mg/dL",
        "mg/dL",
        Decimal("40"),
        Decimal("1000"),
        vital_sign=False,
        other_unit_keys=(("mmol/L", "CHOLESTEROL_MG_DL_PER_MMOL_L"),),
    ),  # [W]
    # LDL as labs usually report it in a lipid panel, calculated (Friedewald); 18262-6 is direct LDL.
    MeasurementKind.LDL: KindSpec(
        "13457-7",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
        "mg/dL",
        "mg/dL",
        Decimal("5"),
        Decimal("800"),
        vital_sign=False,
        other_unit_keys=(("mmol/L", "CHOLESTEROL_MG_DL_PER_MMOL_L"),),
    ),  # [W]
    MeasurementKind.HDL: KindSpec(
        "2085-9",
        "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        "mg/dL",
        "mg/dL",
        Decimal("5"),
        Decimal("250"),
        vital_sign=False,
        other_unit_keys=(("mmol/L", "CHOLESTEROL_MG_DL_PER_MMOL_L"),),
    ),  # [W]
    MeasurementKind.TRIGLYCERIDES: KindSpec(
        "2571-8",
        "Triglyceride [Mass/volume] in Serum or Plasma",
        "mg/dL",
        "mg/dL",
        Decimal("10"),
        Decimal("10000"),
        vital_sign=False,
        other_unit_keys=(("mmol/L", "TRIGLYCERIDES_MG_DL_PER_MMOL_L"),),
    ),  # [W]
}

# The blood-pressure pair as FHIR groups it: [F] FHIR R4 vital signs (85354-9 panel, 8462-4 diastolic).
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
DIASTOLIC_LOW, DIASTOLIC_HIGH = Decimal("20"), Decimal("200")
DIASTOLIC_RANGE_MESSAGE = (
    f"Diastolic pressure must be between {DIASTOLIC_LOW:f} and {DIASTOLIC_HIGH:f} mmHg, and below the systolic."
)
# [F] FHIR R4 vital signs: BMI, computed beside each weight from the height on record.
BMI_CODE = ("39156-5", "Body mass index (BMI) [Ratio]")


def range_message(kind: str, unit: str = "") -> str:
    """The refusal for a value out of its kind's range, naming the range in the unit it was typed in."""
    spec = MEASUREMENT_KINDS[kind]
    what = "Systolic pressure" if kind == MeasurementKind.BLOOD_PRESSURE else MeasurementKind(kind).label
    typed = spec.label_of(unit) if unit and spec.factor(unit) is not None else spec.unit_label
    return f"{what} must be {spec.range_text_in(typed)}. Check the number, and that it is in {typed}."


def unknown_unit_message(kind: str, unit: str) -> str | None:
    """The refusal for a unit the kind is not entered in, naming the ones it is; None for a known unit."""
    spec = MEASUREMENT_KINDS[kind]
    if spec.factor(unit) is not None:
        return None
    units = " or ".join(spec.unit_labels)
    return f"“{unit[:16]}” is not a unit for {MeasurementKind(kind).label.lower()}: enter it in {units}."


def body_mass_index(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """BMI = kg / m², to one decimal, as charts show it."""
    metres = height_cm / Decimal(100)
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"))


def _kind_constraints() -> list[models.BaseConstraint]:
    """One named check per kind: its unit, and its value within the plausible range."""
    return [
        models.CheckConstraint(
            condition=~models.Q(kind=kind) | models.Q(unit=spec.unit, value__gte=spec.low, value__lte=spec.high),
            name=f"tracker_measurement_{kind}_in_range",
            violation_error_message=range_message(kind),
        )
        for kind, spec in MEASUREMENT_KINDS.items()
    ]


class ClinicalMeasurement(ClinicalRecord):
    """One measurement (height, BP, pulse, a blood test), taken at a moment, in its kind's unit.

    Never edited or deleted: a wrong one is marked entered in error and a new one recorded.
    Record them with ``tracker.services.measurements.record_measurement``.
    """

    Kind = MeasurementKind

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="measurements")
    kind = models.CharField(max_length=24, choices=MeasurementKind.choices)
    measured_at = models.DateTimeField(help_text="When it was measured (for a blood test, when blood was drawn).")
    value = models.DecimalField(max_digits=7, decimal_places=2, help_text="For blood pressure, the systolic.")
    diastolic = models.DecimalField(
        max_digits=5, decimal_places=1, null=True, blank=True, help_text="Blood pressure only: the diastolic."
    )
    unit = models.CharField(max_length=16, editable=False, help_text="UCUM unit, fixed by the kind.")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(
        blank=True, help_text="Anything that affects the reading (e.g. not fasting, after exercise)."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-measured_at", "-id"]
        constraints = [
            *_kind_constraints(),
            # A blood pressure is a pair, and only a blood pressure has a diastolic.
            models.CheckConstraint(
                condition=(
                    models.Q(
                        kind=MeasurementKind.BLOOD_PRESSURE,
                        diastolic__isnull=False,  # a NULL comparison would pass the check
                        diastolic__gte=DIASTOLIC_LOW,
                        diastolic__lte=DIASTOLIC_HIGH,
                        diastolic__lt=models.F("value"),
                    )
                    | (~models.Q(kind=MeasurementKind.BLOOD_PRESSURE) & models.Q(diastolic__isnull=True))
                ),
                name="tracker_measurement_bp_pair",
                violation_error_message=DIASTOLIC_RANGE_MESSAGE,
            ),
        ]
        indexes = [
            # The monitoring schedules read a patient's latest of each kind.
            models.Index(fields=["patient", "kind", "measured_at"], name="tracker_measurement_pkt"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_value} on {self.measured_at:%Y-%m-%d}"

    @property
    def spec(self) -> KindSpec:
        return MEASUREMENT_KINDS[self.kind]

    @property
    def display_value(self) -> str:
        """'128/82 mmHg', '172 cm', '5.6 %': the value as a clinician writes it."""
        unit = self.spec.unit_label if self.kind in MEASUREMENT_KINDS else self.unit
        value = f"{self.value.normalize():f}" if self.value is not None else "?"
        if self.kind == MeasurementKind.BLOOD_PRESSURE and self.diastolic is not None:
            value = f"{value}/{self.diastolic.normalize():f}"
        return f"{value} {unit}"

    def clean(self) -> None:
        """The range checks with the field they concern, so forms show them at the right input."""
        if self.kind not in MEASUREMENT_KINDS:
            return  # the choices check names it
        self.unit = self.spec.unit
        errors: dict[str, str] = {}
        if self.value is not None and not self.spec.low <= self.value <= self.spec.high:
            errors["value"] = range_message(self.kind)
        if self.kind == MeasurementKind.BLOOD_PRESSURE:
            if self.diastolic is None:
                errors["diastolic"] = "A blood pressure needs its diastolic (the lower number) too."
            elif not DIASTOLIC_LOW <= self.diastolic <= DIASTOLIC_HIGH or (
                self.value is not None and self.diastolic >= self.value
            ):
                errors["diastolic"] = DIASTOLIC_RANGE_MESSAGE
        elif self.diastolic is not None:
            errors["diastolic"] = "Only a blood pressure has a diastolic; leave it empty."
        if errors:
            raise ValidationError(errors)
