"""Migration 0017: the open flags of before issue 17 fold into problems, and nothing is deleted."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.dosing import at, daily_course
from tests.symptoms import phq9
from tracker.models import Assessment, Flag, FlagFact, FlagKind, PlannedDose, Severity

migration_0017 = importlib.import_module("tracker.migrations.0017_fold_open_flags")
pytestmark = pytest.mark.django_db


def old_flag(patient, kind: str, key: str, subject=None, severity: int = Severity.WARNING, when: str = "") -> Flag:
    """A flag as the sweeps stored it before 0016: one per dose or score, no facts."""
    return Flag.objects.create(
        patient=patient,
        kind=kind,
        severity=severity,
        dedup_key=key,
        message=f"{kind} {key}",
        action="Look at it.",
        raised_at=at(when),
        subject_type=ContentType.objects.get_for_model(subject) if subject is not None else None,
        subject_id=subject.pk if subject is not None else None,
    )


def run_migration() -> None:
    state_apps = MigrationExecutor(connection).loader.project_state(("tracker", "0017_fold_open_flags")).apps
    editor = SimpleNamespace(connection=connection)
    migration_0017.add_facts(state_apps, editor)
    migration_0017.fold(state_apps, editor)


def test_per_dose_flags_and_their_escalation_become_one_problem_with_a_fact_per_dose(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    doses = list(PlannedDose.objects.filter(prescription=rx).order_by("due_at")[:3])
    per_dose = [
        old_flag(patient, FlagKind.DOSE_MISSED, f"dose.missed:planned:{d.pk}", d, when=f"2026-06-0{i + 1}T13:00")
        for i, d in enumerate(doses)
    ]
    escalation = old_flag(
        patient,
        FlagKind.DOSE_MISSED_REPEATED,
        f"dose.missed_repeated:patient:{patient.pk}:drug:{rx.drug_id}",
        severity=Severity.URGENT,
        when="2026-06-03T13:00",
    )
    run_migration()
    (problem,) = Flag.objects.exclude(status=Flag.Status.RESOLVED)
    assert problem.pk == escalation.pk  # the most severe carries the problem
    assert problem.dedup_key == f"dose.missed:patient:{patient.pk}:drug:{rx.drug_id}"
    assert (problem.severity, problem.occurrences, problem.raised_at) == (Severity.URGENT, 3, at("2026-06-01T13:00"))
    assert problem.priority > 0
    assert sorted(problem.facts.values_list("key", flat=True)) == sorted(f"planned:{d.pk}" for d in doses)
    # Nothing deleted: each old flag is still there, resolved into the problem with a note.
    folded = Flag.objects.filter(pk__in=[f.pk for f in per_dose])
    assert folded.count() == 3
    assert set(folded.values_list("status", flat=True)) == {Flag.Status.RESOLVED}
    assert all(f"#{problem.pk}" in note for note in folded.values_list("resolution_note", flat=True))


def test_worsening_flags_of_one_patient_become_one_problem_and_others_keep_their_fact(patient, clinician):
    scores = [phq9(patient, f"2026-06-0{day}T09:00", total) for day, total in ((1, 8), (8, 14))]
    for score in scores:
        old_flag(patient, FlagKind.SCALE_WORSENING, f"scale.worsening:assessment:{score.pk}", score, when="2026-06-08")
    side_effect = old_flag(patient, FlagKind.SE_SEVERE, "se.severe:report:1", when="2026-06-08T10:00")
    run_migration()
    (problem,) = Flag.objects.filter(kind=FlagKind.SCALE_WORSENING).exclude(status=Flag.Status.RESOLVED)
    assert problem.dedup_key == f"scale.worsening:patient:{patient.pk}:phq9"
    assert problem.facts.count() == 2
    assert {f.subject for f in problem.facts.all()} == set(Assessment.objects.all())
    # A one-off flag keeps its key and gains its single fact.
    side_effect.refresh_from_db()
    assert side_effect.dedup_key == "se.severe:report:1"
    assert list(side_effect.facts.values_list("message", flat=True)) == [side_effect.message]
    assert FlagFact.objects.count() == 3
