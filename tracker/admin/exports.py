"""CSV exports for clinicians: one patient's course, and the clinic's adherence and scores.

Both are admin views: staff only, clinic-scoped through the PatientAdmin's queryset (a
patient of another clinic answers 404). Every cell goes through ``csv_cell`` so a value
typed by a patient (a side-effect description "=HYPERLINK(...)") is never run as a
spreadsheet formula.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from tracker import clinical, scales, side_effect_catalogue
from tracker.admin.scoping import clinician_for
from tracker.models import Assessment, Patient, PatientAccess, PlannedDose
from tracker.services.access import record_access
from tracker.timeline import DOSE_OUTCOMES, headline_score, patient_timeline

if TYPE_CHECKING:
    from tracker.admin.patients import PatientAdmin

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_RANGE_DAYS = 366
SCORE_INSTRUMENTS = ("phq9", "gad7", "madrs")
CLINIC_EXPORT_TEMPLATE = "admin/tracker/patient/clinic_export.html"

COURSE_HEADER = ["record", "id", "date", "time_utc", "item", "value", "unit", "status", "detail"]
CLINIC_HEADER = [
    "record_number",
    "family_name",
    "given_name",
    "planned",
    "taken",
    "missed",
    "skipped",
    "adherence_percent",
    *(f"{code}_{which}" for code in SCORE_INSTRUMENTS for which in ("first", "last")),
]


def csv_cell(value: Any) -> str:
    """The cell as text; text a spreadsheet would read as a formula gets a leading quote (OWASP)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # patient data: not in shared caches or the browser's
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return response


def _utc(instant: dt.datetime) -> tuple[str, str]:
    instant = instant.astimezone(dt.UTC)
    return instant.date().isoformat(), instant.strftime("%H:%M")


def course_rows(patient: Patient, now: dt.datetime) -> list[list[Any]]:
    """One patient's course: versions, doses per local day, questionnaires, side effects, weights, flags."""
    timeline = patient_timeline(patient, now=now)
    rows: list[list[Any]] = []
    for rx in timeline.prescriptions:
        detail = rx.change_reason or rx.indication
        until = f"until {rx.end_date.isoformat()}" if rx.end_date else ""
        rows.append(
            ["prescription", rx.pk, rx.start_date.isoformat(), "", rx.drug.name, f"{rx.dose.normalize():f}",
             rx.dose_unit, rx.status, "; ".join(part for part in (detail, until) if part)]
        )  # fmt: skip
    for day, counts in sorted(timeline.days.items()):
        planned = sum(counts[name] for name in DOSE_OUTCOMES)
        summary = ";".join(f"{name}={counts[name]}" for name in (*DOSE_OUTCOMES, "unplanned"))
        rows.append(["doses", "", day.isoformat(), "", "planned doses", planned, "doses", summary, ""])
    for a in timeline.assessments:
        value, unit = headline_score(a)  # FIBSER: the burden item, never a sum of its three items
        rows.append(["assessment", a.pk, *_utc(a.completed_at), scales.get_scale(a.instrument).name, value,
                     unit, a.band, a.get_source_display()])  # fmt: skip
    for s in timeline.side_effects:
        rows.append(["side_effect", s.pk, *_utc(s.reported_at), side_effect_catalogue.label(s.effect), "", "",
                     s.severity, s.description])  # fmt: skip
    for w in timeline.weights:
        rows.append(["weight", w.pk, *_utc(w.measured_at), "body weight", w.weight_kg, "kg", "", w.note])
    for f in timeline.flags:
        note = f"resolution: {f.resolution_note}" if f.resolution_note else ""
        rows.append(["flag", f.pk, *_utc(f.raised_at), f.get_kind_display(), f.get_severity_display(), "",
                     f.status, " ".join(part for part in (f.message, note) if part)])  # fmt: skip
    return rows


def _export_patient(request: HttpRequest, object_id: int, patient_admin: PatientAdmin) -> Patient:
    patient = patient_admin.get_object(request, str(object_id))  # 404 outside the user's clinic
    if not patient_admin.has_view_permission(request, patient):
        raise PermissionDenied
    return patient


def course_export_view(request: HttpRequest, object_id: int, patient_admin: PatientAdmin) -> HttpResponse:
    patient = _export_patient(request, object_id, patient_admin)
    record_access(request, patient, PatientAccess.Surface.COURSE_CSV)
    filename = f"course-{patient.record_number}-{timezone.localdate():%Y%m%d}.csv"
    return csv_response(filename, COURSE_HEADER, course_rows(patient, timezone.now()))


class ClinicExportForm(forms.Form):
    start = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="First day (YYYY-MM-DD), patient's local day."
    )
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Last day, included.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The end date cannot be before the start date.")
            elif (end - start).days + 1 > MAX_RANGE_DAYS:
                self.add_error("end", f"Export at most {MAX_RANGE_DAYS} days at a time.")
        return data


def clinic_rows(patients: Sequence[Patient], start: dt.date, end: dt.date) -> list[list[Any]]:
    """Adherence and first/last scores per patient for local days ``start``..``end`` (2 queries)."""
    ids = [p.pk for p in patients]
    doses = {
        row["patient_id"]: row
        for row in PlannedDose.objects.filter(patient_id__in=ids, local_date__gte=start, local_date__lte=end)
        .exclude(status=PlannedDose.Status.CANCELLED)
        .values("patient_id")
        .annotate(planned=Count("id"), **{name: Count("id", filter=Q(status=name)) for name in DOSE_OUTCOMES})
        .order_by("patient_id")
    }
    # A day's margin either side, then each score is kept by the patient's own local day.
    margin = dt.timedelta(days=1)
    scores: dict[tuple[int, str], list[int]] = defaultdict(list)
    zones = {p.pk: p.zone for p in patients}
    rows = (
        Assessment.objects.current()
        .filter(
            patient_id__in=ids,
            instrument__in=SCORE_INSTRUMENTS,
            completed_at__gte=dt.datetime.combine(start - margin, dt.time(0), tzinfo=dt.UTC),
            completed_at__lt=dt.datetime.combine(end + margin * 2, dt.time(0), tzinfo=dt.UTC),
        )
        .order_by("completed_at", "id")
        .values_list("patient_id", "instrument", "completed_at", "total")
    )
    for patient_id, instrument, completed_at, total in rows:
        if start <= completed_at.astimezone(zones[patient_id]).date() <= end:
            scores[patient_id, instrument].append(total)
    out = []
    for p in patients:
        d = doses.get(p.pk, {})
        judged = d.get("taken", 0) + d.get("missed", 0) + d.get("skipped", 0)
        taken_share = clinical.taken_share(d.get("taken", 0), judged)  # §7's share, as the sweep judges it
        share = "" if taken_share is None else round(100 * taken_share)
        first_last = []
        for code in SCORE_INSTRUMENTS:
            totals = scores.get((p.pk, code), [])
            first_last += [totals[0], totals[-1]] if totals else ["", ""]
        if not d and not any(v != "" for v in first_last):
            continue  # nothing recorded in the range
        counts = [d.get(name, 0) for name in ("planned", "taken", "missed", "skipped")]
        out.append([p.record_number, p.family_name, p.given_name, *counts, share, *first_last])
    return out


def clinic_export_view(request: HttpRequest, patient_admin: PatientAdmin) -> HttpResponse:
    """Without dates, the form; with bad dates, the form and its errors (400); else the CSV."""
    if not patient_admin.has_view_permission(request):
        raise PermissionDenied
    form = ClinicExportForm(request.GET or None)
    if not form.is_valid():
        context = {
            **patient_admin.admin_site.each_context(request),
            "opts": patient_admin.opts,
            "title": "Export the clinic's adherence and scores",
            "form": form,
        }
        return TemplateResponse(request, CLINIC_EXPORT_TEMPLATE, context, status=400 if form.is_bound else 200)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    patients = list(patient_admin.get_queryset(request).order_by("family_name", "given_name", "pk"))
    membership = clinician_for(request)
    slug = membership.clinic.slug if membership else "all-clinics"
    return csv_response(
        f"{slug}-adherence-{start:%Y%m%d}-{end:%Y%m%d}.csv", CLINIC_HEADER, clinic_rows(patients, start, end)
    )
