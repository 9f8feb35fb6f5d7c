"""Helpers for symptom and side-effect tests: answers that add up to a chosen total."""

from __future__ import annotations

from tests.dosing import at
from tracker.models import Assessment
from tracker.services.assessments import EffectReport, report_side_effects, submit_assessment


def answers_for(total: int, items: int = 9, top: int = 3, item9: int = 0) -> list[int]:
    """Item answers summing to ``total`` with item 9 (the last) fixed when asked."""
    values = [0] * items
    remaining = total - item9
    for i in range(items - 1):
        values[i] = min(top, remaining)
        remaining -= values[i]
    values[-1] = item9 if items == 9 else min(top, remaining)
    assert sum(values) == total, "total not reachable"
    return values


def phq9(patient, when: str, total: int, item9: int = 0) -> Assessment:
    return submit_assessment(
        patient=patient,
        instrument="phq9",
        answers=answers_for(total, item9=item9),
        source="patient",
        completed_at=at(when),
        now=at(when),
    ).assessment


def fibser(patient, when: str, burden: int) -> Assessment:
    return submit_assessment(
        patient=patient,
        instrument="fibser",
        answers=[burden, burden, burden],
        source="patient",
        completed_at=at(when),
        now=at(when),
    ).assessment


def side_effect(patient, when: str, effect: str, severity: str, **kwargs):
    (report,) = report_side_effects(
        patient=patient, effects=[EffectReport(effect=effect, severity=severity, **kwargs)], now=at(when)
    )
    return report
