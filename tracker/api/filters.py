"""Filters for the list endpoints.

References to other rows are plain numbers (``IdFilter``), not model choices: a choice
filter would answer "not a valid choice" for an id in another clinic but not for a missing
one, which would let ids be probed. The scoped queryset already limits what can match.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tracker.api.fields import EARLIEST, LATEST, course_day, utc_instant
from tracker.models import (
    Assessment,
    ClinicalMeasurement,
    DoseEvent,
    DoseSchedule,
    Flag,
    FlagKind,
    InClinicSession,
    Instrument,
    Patient,
    PlannedDose,
    Prescription,
    Severity,
    SideEffectReport,
    WeightMeasurement,
)

MAX_ID = 2**63 - 1  # the largest id a bigint key can hold; larger values would overflow the query


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """A row id: a whole number in the key's range (a bare number, see the module docstring)."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class BoundedRangeMixin:
    """Both ends of a range within the years a course can span (tracker.api.fields), else a 400.

    The refusal is under the filter's name (``occurred_at`` for ``occurred_at_after``), as
    django-filter names a malformed value; ``range_help`` is the schema's description of it.
    """

    field_name: str
    range_help: str

    @staticmethod
    def bound(value: Any) -> Any:
        raise NotImplementedError

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", f"{self.range_help} Outside that, or malformed, a 400 names the filter.")
        super().__init__(**kwargs)  # type: ignore[call-arg]

    def filter(self, qs: QuerySet, value: slice | None) -> QuerySet:
        if value:
            try:
                value = slice(*(self.bound(v) if v else None for v in (value.start, value.stop)))
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({self.field_name: exc.detail}) from exc
        return super().filter(qs, value)  # type: ignore[misc]


class InstantRangeFilter(BoundedRangeMixin, filters.IsoDateTimeFromToRangeFilter):
    """``<name>_after`` / ``<name>_before`` instants, bounded and compared in UTC (see utc_instant)."""

    bound = staticmethod(utc_instant)
    range_help = (
        "An instant, ISO 8601 with its offset (e.g. 2026-06-01T08:00:00+01:00; without one it is read as "
        f"UTC), from {EARLIEST} to {LATEST}."
    )


class DayRangeFilter(BoundedRangeMixin, filters.DateFromToRangeFilter):
    """``<name>_after`` / ``<name>_before`` days, both included, bounded like every date of the API."""

    bound = staticmethod(course_day)
    range_help = f"A day, YYYY-MM-DD, from {EARLIEST} to {LATEST}, both ends included."


class ClinicalRecordFilter(filters.FilterSet):
    entered_in_error = filters.BooleanFilter(
        method="filter_entered_in_error", label="Only records marked entered in error (true) or only current (false)."
    )

    @extend_schema_field(
        {
            "type": "boolean",
            "description": "true: only records marked entered in error; false: only current ones; omitted: both.",
        }
    )
    def filter_entered_in_error(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(entered_in_error_at__isnull=not value)


class PatientFilter(ClinicalRecordFilter):
    responsible_clinician = IdFilter(field_name="responsible_clinician_id")

    class Meta:
        model = Patient
        fields = ("record_number", "is_active", "responsible_clinician")


class PerPatientFilter(ClinicalRecordFilter):
    patient = IdFilter(field_name="patient_id")


class PrescriptionFilter(PerPatientFilter):
    drug = IdFilter(field_name="drug_id")
    status = filters.ChoiceFilter(choices=Prescription.Status.choices)
    start_date = DayRangeFilter()

    class Meta:
        model = Prescription
        fields = ("patient", "drug", "status")


class DoseScheduleFilter(ClinicalRecordFilter):
    prescription = IdFilter(field_name="prescription_id")
    patient = IdFilter(field_name="prescription__patient_id")
    kind = filters.ChoiceFilter(choices=DoseSchedule.Kind.choices)

    class Meta:
        model = DoseSchedule
        fields = ("prescription", "patient", "kind")


class PlannedDoseFilter(filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    prescription = IdFilter(field_name="prescription_id")
    status = filters.ChoiceFilter(choices=PlannedDose.Status.choices)
    due_at = InstantRangeFilter()

    class Meta:
        model = PlannedDose
        fields = ("patient", "prescription", "status")


class DoseEventFilter(PerPatientFilter):
    prescription = IdFilter(field_name="prescription_id")
    outcome = filters.ChoiceFilter(choices=DoseEvent.Outcome.choices)
    location = filters.ChoiceFilter(choices=DoseEvent.Location.choices)
    occurred_at = InstantRangeFilter()

    class Meta:
        model = DoseEvent
        fields = ("patient", "prescription", "outcome", "location", "outside_clinic_report")


class AssessmentFilter(PerPatientFilter):
    instrument = filters.ChoiceFilter(choices=Instrument.choices)
    source = filters.ChoiceFilter(choices=Assessment.Source.choices)
    completed_at = InstantRangeFilter()

    class Meta:
        model = Assessment
        fields = ("patient", "instrument", "source")


class SideEffectReportFilter(PerPatientFilter):
    prescription = IdFilter(field_name="prescription_id")
    severity = filters.ChoiceFilter(choices=SideEffectReport.Severity.choices)
    reported_at = InstantRangeFilter()

    class Meta:
        model = SideEffectReport
        fields = ("patient", "prescription", "severity", "effect")


class InClinicSessionFilter(PerPatientFilter):
    prescription = IdFilter(field_name="prescription_id")
    status = filters.ChoiceFilter(choices=InClinicSession.Status.choices)
    first_device_at = InstantRangeFilter()

    class Meta:
        model = InClinicSession
        fields = ("patient", "prescription", "status")


class WeightMeasurementFilter(PerPatientFilter):
    measured_at = InstantRangeFilter()

    class Meta:
        model = WeightMeasurement
        fields = ("patient",)


class ClinicalMeasurementFilter(PerPatientFilter):
    kind = filters.ChoiceFilter(choices=ClinicalMeasurement.Kind.choices)
    measured_at = InstantRangeFilter()

    class Meta:
        model = ClinicalMeasurement
        fields = ("patient", "kind")


class FlagFilter(filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    status = filters.ChoiceFilter(choices=Flag.Status.choices)
    kind = filters.ChoiceFilter(choices=FlagKind.choices)
    severity = filters.TypedChoiceFilter(choices=Severity.choices, coerce=int)
    raised_at = InstantRangeFilter()

    class Meta:
        model = Flag
        fields = ("patient", "status", "kind", "severity")
