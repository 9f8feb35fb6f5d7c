"""Batch loaders shared by the sweeps: one query each, whatever the number of patients."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection

from django.db import connection

from tracker.courses import Course, Score, Version, Weight, build_courses
from tracker.models import Assessment, DrugClass, Patient, Prescription, WeightMeasurement
from tracker.rules.sql import is_postgres, ts


def claim(table: str, time_column: str, now: dt.datetime, limit: int) -> list[int]:
    """Mark up to ``limit`` unevaluated rows of ``table`` evaluated; return the ids this call claimed."""
    lock = "FOR UPDATE SKIP LOCKED" if is_postgres() else ""
    sql = f"""
        UPDATE {table} SET evaluated_at = %s
        WHERE id IN (
            SELECT id FROM {table}
            WHERE evaluated_at IS NULL AND entered_in_error_at IS NULL AND {time_column} <= %s
            ORDER BY {time_column}, id LIMIT %s {lock}
        ) AND evaluated_at IS NULL
        RETURNING id
    """  # noqa: S608 - table and column names are constants of the callers
    with connection.cursor() as cursor:
        cursor.execute(sql, [ts(now), ts(now), limit])
        return [row[0] for row in cursor.fetchall()]


def courses_by_patient(patient_ids: Collection[int], *, antidepressants_only: bool = False) -> dict[int, list[Course]]:
    """Every course (chain of versions) of these patients, oldest first."""
    rows = Prescription.objects.current().filter(patient_id__in=patient_ids)
    if antidepressants_only:
        rows = rows.filter(drug__drug_class__in=DrugClass.antidepressants())
    versions = [
        Version(
            id=r["id"],
            replaces_id=r["replaces_id"],
            patient_id=r["patient_id"],
            drug_id=r["drug_id"],
            drug_name=r["drug__name"],
            drug_display=r["drug__display_name"],
            drug_class=r["drug__drug_class"],
            usual_min=r["drug__usual_min"],
            dose=r["dose"],
            dose_unit=r["dose_unit"],
            start_date=r["start_date"],
            status=r["status"],
            doses_per_day=r["regular_doses_per_day"],
        )
        for r in rows.values(
            "id",
            "replaces_id",
            "patient_id",
            "drug_id",
            "drug__name",
            "drug__display_name",
            "drug__drug_class",
            "drug__usual_min",
            "dose",
            "dose_unit",
            "start_date",
            "status",
            "regular_doses_per_day",
        )
    ]
    grouped: dict[int, list[Course]] = defaultdict(list)
    for course in build_courses(versions):
        grouped[course.current.patient_id].append(course)
    return grouped


def scores_by_patient(patient_ids: Collection[int], instruments: Collection[str]) -> dict[int, list[Score]]:
    grouped: dict[int, list[Score]] = defaultdict(list)
    rows = (
        Assessment.objects.current()
        .filter(patient_id__in=patient_ids, instrument__in=instruments)
        .order_by("completed_at", "id")
        .values_list("id", "patient_id", "instrument", "completed_at", "total")
    )
    for pk, patient_id, instrument, completed_at, total in rows:
        grouped[patient_id].append(Score(pk, patient_id, instrument, completed_at, total))
    return grouped


def weights_by_patient(patient_ids: Collection[int], *, until: dt.datetime) -> dict[int, list[Weight]]:
    """Current weight measurements of these patients up to ``until``, oldest first (no query for no patients)."""
    grouped: dict[int, list[Weight]] = defaultdict(list)
    if not patient_ids:
        return grouped
    rows = (
        WeightMeasurement.objects.current()
        .filter(patient_id__in=patient_ids, measured_at__lte=until)
        .order_by("measured_at", "id")
        .values_list("id", "patient_id", "measured_at", "weight_kg")
    )
    for pk, patient_id, measured_at, weight_kg in rows:
        grouped[patient_id].append(Weight(pk, patient_id, measured_at, weight_kg))
    return grouped


def patients(patient_ids: Collection[int]) -> dict[int, Patient]:
    return {
        p.pk: p for p in Patient.objects.filter(pk__in=patient_ids).only("id", "timezone", "date_of_birth", "clinic_id")
    }


def active_patient_ids_in_chunks(chunk: int = 2000):
    """Ids of patients with an active course, in chunks (keeps memory flat at any clinic size)."""
    last = 0
    while True:
        ids = list(
            Prescription.objects.current()
            .filter(status=Prescription.Status.ACTIVE, patient_id__gt=last, patient__is_active=True)
            .order_by("patient_id")
            .values_list("patient_id", flat=True)
            .distinct()[:chunk]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]
