"""The drug catalogue: the psychotropics a clinic prescribes, with their dose limits.

Seeded from clinical-reference §6 by a data migration and editable in the admin.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models


class DrugClass(models.TextChoices):
    SSRI = "ssri", "SSRI"
    SNRI = "snri", "SNRI"
    NDRI = "ndri", "NDRI (bupropion)"
    NASSA = "nassa", "NaSSA (mirtazapine)"
    MAOI = "maoi", "MAOI"
    STIMULANT = "stimulant", "Stimulant"
    SGA = "sga", "Second-generation antipsychotic"
    BENZODIAZEPINE = "benzodiazepine", "Benzodiazepine"
    MOOD_STABILISER = "mood_stabiliser", "Mood stabiliser"
    NMDA_ANTAGONIST = "nmda_antagonist", "NMDA antagonist (ketamine, esketamine)"

    @classmethod
    def antidepressants(cls) -> set[str]:
        return {cls.SSRI, cls.SNRI, cls.NDRI, cls.NASSA, cls.MAOI}

    @classmethod
    def antipsychotics(cls) -> set[str]:
        return {cls.SGA}


class Route(models.TextChoices):
    ORAL = "oral", "By mouth"
    NASAL = "nasal", "Nasal spray"
    INTRAVENOUS = "iv", "Intravenous infusion"
    SUBLINGUAL = "sublingual", "Under the tongue"
    INTRAMUSCULAR = "im", "Intramuscular injection"


class DoseUnit(models.TextChoices):
    MG = "mg", "mg"
    MG_PER_KG = "mg/kg", "mg/kg"


class DoseBasis(models.TextChoices):
    DAY = "day", "per local calendar day"
    SESSION = "session", "per clinic session"


class Drug(models.Model):
    name = models.CharField(max_length=100, unique=True, help_text="Generic name, lower case.")
    display_name = models.CharField(max_length=100)
    drug_class = models.CharField(max_length=20, choices=DrugClass.choices)
    routes = models.JSONField(default=list, help_text='Allowed routes, e.g. ["oral"].')
    atc_code = models.CharField(max_length=10, blank=True)
    rxnorm_code = models.CharField(
        max_length=20, blank=True, help_text="RxNorm ingredient (IN) concept; blank when not confirmed."
    )
    dose_unit = models.CharField(max_length=10, choices=DoseUnit.choices, default=DoseUnit.MG)
    dose_basis = models.CharField(max_length=10, choices=DoseBasis.choices, default=DoseBasis.DAY)
    usual_min = models.DecimalField(max_digits=8, decimal_places=2)
    usual_max = models.DecimalField(max_digits=8, decimal_places=2)
    maximum = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Label maximum per day (or per session); a higher dose is refused. "
        "Blank where no label maximum applies.",
    )
    in_clinic_only = models.BooleanField(
        default=False, help_text="Given only in the clinic under observation (ketamine, esketamine)."
    )
    notes = models.TextField(blank=True, help_text="Interaction and monitoring notes.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(usual_min__gt=0) & models.Q(usual_max__gte=models.F("usual_min")),
                name="tracker_drug_usual_range_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(maximum__isnull=True) | models.Q(maximum__gte=models.F("usual_max")),
                name="tracker_drug_maximum_not_below_usual",
            ),
            models.CheckConstraint(
                condition=models.Q(drug_class__in=DrugClass.values), name="tracker_drug_class_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    def clean(self) -> None:
        super().clean()
        unknown = [r for r in self.routes or [] if r not in Route.values]
        if not self.routes or unknown:
            raise ValidationError({"routes": f"Choose routes from: {', '.join(Route.values)}."})

    @property
    def is_antidepressant(self) -> bool:
        return self.drug_class in DrugClass.antidepressants()

    @property
    def is_esketamine(self) -> bool:
        """Esketamine (Spravato), whose §1 rules (REMS, label indications, day-1 doses) apply by name.

        Case-insensitive, so a catalogue row typed "Esketamine" is not silently exempt.
        """
        return self.name.lower() == "esketamine"

    def describe_limit(self, maximum: Decimal | None = None) -> str:
        """'200 mg per local calendar day', for messages that name the limit."""
        value = self.maximum if maximum is None else maximum
        return f"{value.normalize():f} {self.dose_unit} {DoseBasis(self.dose_basis).label}"
