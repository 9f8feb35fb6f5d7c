"""Measurement-based monitoring: what the measurements on record say, and what is due next.

Reads only (selectors); the writes are in ``tracker.services.measurements``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tracker.models import ClinicalMeasurement, WeightMeasurement
from tracker.models.measurements import body_mass_index


def height_for(heights: list[ClinicalMeasurement], at: dt.datetime) -> Decimal | None:
    """The height to compute a BMI at ``at``: the last one measured by then, else the first after.

    ``heights`` are the patient's current heights in time order. An adult's height hardly
    changes, so a height measured after the weight is better than no BMI at all.
    """
    before = [h for h in heights if h.measured_at <= at]
    if before:
        return before[-1].value
    return heights[0].value if heights else None


def bmi_by_weight(weights: list[WeightMeasurement]) -> dict[int, Decimal]:
    """BMI beside each weight (by weight id), from the patient's heights: one query per call."""
    patient_ids = {w.patient_id for w in weights}
    heights: dict[int, list[ClinicalMeasurement]] = {}
    for h in (
        ClinicalMeasurement.objects.current()
        .filter(patient_id__in=patient_ids, kind=ClinicalMeasurement.Kind.HEIGHT)
        .order_by("measured_at", "id")
    ):
        heights.setdefault(h.patient_id, []).append(h)
    result: dict[int, Decimal] = {}
    for w in weights:
        height = height_for(heights.get(w.patient_id, []), w.measured_at)
        if height is not None:
            result[w.pk] = body_mass_index(w.weight_kg, height)
    return result
