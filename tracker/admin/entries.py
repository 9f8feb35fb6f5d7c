"""Clinician entry from the patient page: a score rated or taken in the clinic, a dose given or phoned in.

Each form translates what the clinician typed and makes one service call, so the same
scoring, matching and flags apply as when the patient enters it themselves:
``submit_assessment`` (source: clinician) and ``record_dose`` (reporter: clinician).

Times are typed and shown on the patient's wall clock, with the zone named, and stored in
UTC. Across a daylight-saving change (zoneinfo, ``fold=0``):

- a time the clocks skipped (01:30 on the spring-forward night in London) is refused, with
  the change it fell into, because no clock showed it;
- a time that happened twice (01:30 on the fall-back night) is stored as its first
  occurrence (``fold=0``, still on summer time), and the message after saving says so.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from tracker import clinical, scales
from tracker.admin.prescriptions import patient_context
from tracker.admin.scoping import apply_validation_error, restrict_to_clinic
from tracker.models import Assessment, DoseEvent, Patient, Prescription
from tracker.portal.selectors import crisis_guidance, crisis_numbers
from tracker.services.assessments import submit_assessment
from tracker.services.doses import record_dose

ENTRY_FORM_TEMPLATE = "admin/tracker/entry_form.html"
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> reads and writes
LOCAL_INPUT_FORMATS = (LOCAL_INPUT_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")

# The scales a clinician enters here: MADRS is clinician-rated; PHQ-9 and GAD-7 taken on paper.
CLINIC_INSTRUMENTS: dict[str, str] = {
    scales.MADRS.code: "MADRS (clinician-rated, 10 items scored 0–6)",
    scales.PHQ9.code: "PHQ-9 taken in the clinic (9 items scored 0–3)",
    scales.GAD7.code: "GAD-7 taken in the clinic (7 items scored 0–3)",
}


# --- Local time --------------------------------------------------------------------------


def local_text(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """ "14:05 BST on 29 Mar 2026": the wall clock where the patient is, its abbreviation named."""
    local = instant.astimezone(dt.UTC).astimezone(zone)  # via UTC: a skipped wall time is normalised
    return f"{local:%H:%M} {local.tzname()} on {local.day} {local:%b %Y}"


def from_wall_clock(naive: dt.datetime, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, bool]:
    """(the instant ``naive`` names on ``zone``'s wall clock, whether that clock showed it twice).

    Raises ValidationError for a time the clocks skipped. A repeated time is its first
    occurrence (``fold=0``): the earlier instant, before the clocks went back.
    """
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
        # fold=0 reads a skipped time with the offset from before the change: a clock not yet
        # put forward that showed it meant this instant.
        jump = second.utcoffset() - first.utcoffset()  # type: ignore[operator]
        raise ValidationError(
            f"{naive:%H:%M} did not happen on {naive.day} {naive:%B %Y} in {zone.key}: the clocks went "
            f"forward {_duration(jump)} that night. Enter the time the clock showed "
            f"(a clock not yet changed that read {naive:%H:%M} meant {local_text(first, zone)}).",
            code="nonexistent",
        )
    return first, first.utcoffset() != second.utcoffset()


def _duration(delta: dt.timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    return "an hour" if minutes == 60 else f"{minutes} minutes"


class LocalDateTimeField(forms.Field):
    """One labelled ``<input type="datetime-local">`` on the patient's wall clock; cleans to UTC.

    After cleaning, ``repeated`` says whether the time happened twice (stored as the first).
    """

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT_FORMAT)
    default_error_messages = {"invalid": "Enter a date and time, e.g. 2026-06-01 09:30."}

    def __init__(self, *, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zone = zone
        self.repeated = False

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and timezone.is_aware(value):
            return value.astimezone(self.zone).strftime(LOCAL_INPUT_FORMAT)
        return value

    def to_python(self, value: Any) -> dt.datetime | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        for fmt in LOCAL_INPUT_FORMATS:
            try:
                naive = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 (a wall-clock time; the zone is added next)
            except ValueError:
                continue
            instant, self.repeated = from_wall_clock(naive, self.zone)
            return instant.astimezone(dt.UTC)
        raise ValidationError(self.error_messages["invalid"], code="invalid")

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is None:
            return
        # The services allow the same few minutes of clock skew; the reason is given here.
        now = timezone.now()
        if value > now + dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")):
            raise ValidationError(
                f"That is in the future: it is now {local_text(now, self.zone)} in {self.zone.key}.",
                code="future",
            )


def local_time_field(patient: Patient, label: str, help_text: str) -> LocalDateTimeField:
    zone = patient.zone
    now_local = timezone.now().astimezone(zone)
    return LocalDateTimeField(
        zone=zone,
        label=f"{label} ({zone.key} time)",
        initial=now_local.strftime(LOCAL_INPUT_FORMAT),
        help_text=f"{help_text} On the patient's clock in {zone.key}; it is now {local_text(now_local, zone)}.",
    )


def repeated_note(field: LocalDateTimeField, instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    if not field.repeated:
        return ""
    local = instant.astimezone(zone)
    return (
        f" {local:%H:%M} happened twice that night in {zone.key} (the clocks went back): it was recorded as the "
        f"first, {local:%H:%M} {local.tzname()} ({instant.astimezone(dt.UTC):%H:%M} UTC)."
    )


# --- Forms -------------------------------------------------------------------------------


def item_short_text(text: str, limit: int = 45) -> str:
    """ "thoughts that you would be better off dead…": an item named in words, shortened."""
    clause = text.split(",")[0].split("?")[0].strip()
    if len(clause) > limit:
        clause = clause[:limit].rsplit(" ", 1)[0]
    shortened = clause != text.strip().rstrip("?")
    return clause[0].lower() + clause[1:] + ("…" if shortened else "")


def answer_label(value: int, label: str) -> str:
    return label if label == str(value) else f"{label} ({value})"


class InstrumentChoiceForm(forms.Form):
    instrument = forms.ChoiceField(
        choices=list(CLINIC_INSTRUMENTS.items()), widget=forms.RadioSelect, label="Which scale"
    )


class ScoreForm(forms.Form):
    """Every item of one scale as a radio group (a fieldset with its legend), all required."""

    def __init__(self, *args: Any, scale: scales.Scale, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scale = scale
        self.fields["completed_at"] = local_time_field(
            patient, "Completed at", "When the patient answered, or when you rated them."
        )
        choices = [(value, answer_label(value, label)) for value, label in scale.options]
        for number, text in enumerate(scale.items, start=1):
            missing = f"Item {number} ({item_short_text(text)}) needs an answer."
            self.fields[f"item_{number}"] = forms.TypedChoiceField(
                label=f"Item {number}. {text}",
                choices=choices,
                coerce=int,
                widget=forms.RadioSelect,
                label_suffix="",
                error_messages={"required": missing, "invalid_choice": missing},
            )

    def answers(self) -> list[int]:
        return [self.cleaned_data[f"item_{n}"] for n in range(1, len(self.scale.items) + 1)]


class PrescriptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Prescription) -> str:
        text = f"{obj.drug} {obj.dose_text}"
        return f"{text} — given in the clinic: record as an in-clinic session" if obj.drug.in_clinic_only else text


class DoseForm(forms.Form):
    """A dose the clinician gave, or one the patient reported by phone; clinic-only drugs go elsewhere."""

    WHERE_CHOICES = [
        (DoseEvent.Location.CLINIC, "Given at the clinic"),
        (DoseEvent.Location.HOME, "Reported by phone (taken at home or elsewhere)"),
    ]

    clinic_only_prescription: Prescription | None = None  # set by clean() when refused for that reason

    prescription = PrescriptionChoiceField(queryset=Prescription.objects.none(), empty_label=None)
    outcome = forms.ChoiceField(
        choices=DoseEvent.Outcome.choices, initial=DoseEvent.Outcome.TAKEN, widget=forms.RadioSelect, label="Dose"
    )
    skip_reason = forms.CharField(
        required=False, max_length=500, label="Why skipped", help_text="Needed when the dose was skipped."
    )
    location = forms.ChoiceField(choices=WHERE_CHOICES, widget=forms.RadioSelect, label="Where")
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prescription"].queryset = (
            Prescription.objects.current()
            .filter(patient=patient, status=Prescription.Status.ACTIVE)
            .select_related("drug")
            .order_by("drug__display_name", "pk")
        )
        if not self.fields["prescription"].queryset.exists():
            self.fields["prescription"].help_text = "This patient has no active prescription: prescribe first."
        self.fields["occurred_at"] = local_time_field(patient, "When", "When the dose was taken or skipped.")
        self.order_fields(["prescription", "outcome", "skip_reason", "occurred_at", "location", "note"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        rx = cleaned.get("prescription")
        self.clinic_only_prescription = rx if rx is not None and rx.drug.in_clinic_only else None
        if self.clinic_only_prescription is not None:
            self.add_error(
                "prescription",
                f"{rx.drug} is given only in the clinic, under observation: record it as an in-clinic session "
                "(In-clinic sessions in the admin), not here.",
            )
        if cleaned.get("outcome") == DoseEvent.Outcome.SKIPPED and not cleaned.get("skip_reason", "").strip():
            self.add_error("skip_reason", "Say why the dose was skipped.")
        return cleaned


# --- Views (bound to the PatientAdmin by its get_urls) ------------------------------------


def _patient(request: HttpRequest, object_id: int) -> Patient:
    """The patient, if they are in the user's clinic (404 otherwise, as for every record)."""
    return get_object_or_404(restrict_to_clinic(Patient.objects.current(), request), pk=object_id)


def _require(request: HttpRequest, permission: str, reason: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied(reason)


def _render(
    request: HttpRequest, patient_admin: admin.ModelAdmin, patient: Patient, form: forms.Form, **extra: Any
) -> HttpResponse:
    context = {
        **patient_admin.admin_site.each_context(request),
        "opts": patient_admin.opts,
        "original": patient,
        "form": form,
        **patient_context(patient),
        **extra,
    }
    return TemplateResponse(request, ENTRY_FORM_TEMPLATE, context)


def _back_to(patient: Patient) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:tracker_patient_change", args=[quote(patient.pk)]))


SCORE_REFUSAL = "Only nurses and prescribers can record scores."
DOSE_REFUSAL = "Only nurses and prescribers can record doses."


def score_choice_view(request: HttpRequest, object_id: int, patient_admin: admin.ModelAdmin) -> HttpResponse:
    """Record a score: first which scale."""
    _require(request, "tracker.add_assessment", SCORE_REFUSAL)
    patient = _patient(request, object_id)
    form = InstrumentChoiceForm(request.GET or None)
    if request.GET and form.is_valid():
        return HttpResponseRedirect(
            reverse("admin:tracker_patient_record_score", args=[patient.pk, form.cleaned_data["instrument"]])
        )
    return _render(
        request,
        patient_admin,
        patient,
        form,
        title=f"Record a score for {patient.full_name}",
        submit_label="Continue",
        get=True,
    )


def score_view(request: HttpRequest, object_id: int, instrument: str, patient_admin: admin.ModelAdmin) -> HttpResponse:
    """One scale's items; saved through ``submit_assessment`` with the clinician as the source."""
    _require(request, "tracker.add_assessment", SCORE_REFUSAL)
    patient = _patient(request, object_id)
    if instrument not in CLINIC_INSTRUMENTS:
        return HttpResponseRedirect(reverse("admin:tracker_patient_record_score_choice", args=[patient.pk]))
    scale = scales.get_scale(instrument)
    form = ScoreForm(request.POST if request.method == "POST" else None, scale=scale, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            submitted = submit_assessment(
                patient=patient,
                instrument=scale.code,
                answers=form.answers(),
                source=Assessment.Source.CLINICIAN,
                recorded_by=request.user,
                completed_at=form.cleaned_data["completed_at"],
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            assessment = submitted.assessment
            patient_admin.log_addition(request, assessment, [{"added": {}}])
            when = local_text(assessment.completed_at, patient.zone)
            note = repeated_note(form.fields["completed_at"], assessment.completed_at, patient.zone)
            messages.success(
                request,
                f"Recorded {scale.name} for {patient.full_name}, {when}: total {assessment.total} "
                f"({assessment.band}).{note}",
            )
            if submitted.suicidality_flagged:
                _tell_suicidality(request, patient, assessment)
            return _back_to(patient)
    return _render(
        request,
        patient_admin,
        patient,
        form,
        title=f"Record {scale.name} for {patient.full_name}",
        submit_label=f"Record {scale.name}",
        intro=f"{CLINIC_INSTRUMENTS[scale.code]}. Every item needs an answer; the total and band are computed "
        "on saving, and the same flags follow as when the patient answers in the portal.",
        item_form=True,
    )


def _tell_suicidality(request: HttpRequest, patient: Patient, assessment: Assessment) -> None:
    answer = dict(scales.PHQ9.options)[assessment.answers[scales.PHQ9_SUICIDALITY_ITEM]]
    messages.error(
        request,
        f'Urgent flag raised: PHQ-9 item 9 (thoughts of being better off dead or of self-harm) answered "{answer}". '
        "Assess the patient's risk today, before they leave if they are with you (for example a C-SSRS).",
    )
    worklist = reverse("admin:index") + f"?patient={patient.pk}"
    paragraphs = crisis_guidance(patient.clinic)  # paragraphs of (text, tel) pieces
    guidance = " ".join("".join(text for text, _ in pieces) for pieces in paragraphs)
    numbers = "; ".join(f"{n.label}: {n.number}" for n in crisis_numbers(patient.clinic))
    if numbers:
        guidance = f"{guidance} Numbers: {numbers}."
    messages.warning(
        request,
        format_html(
            'Crisis guidance to give the patient: {} <a href="{}">The flag on the worklist</a>.', guidance, worklist
        ),
    )


def dose_view(request: HttpRequest, object_id: int, patient_admin: admin.ModelAdmin) -> HttpResponse:
    """A dose given in the clinic or reported by phone, through ``record_dose`` (reporter: clinician)."""
    _require(request, "tracker.add_doseevent", DOSE_REFUSAL)
    patient = _patient(request, object_id)
    initial = {"prescription": request.GET.get("prescription")}
    form = DoseForm(request.POST if request.method == "POST" else None, initial=initial, patient=patient)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                event = record_dose(
                    prescription=data["prescription"],
                    occurred_at=data["occurred_at"],
                    reporter=DoseEvent.Reporter.CLINICIAN,
                    recorded_by=request.user,
                    outcome=data["outcome"],
                    skip_reason=data["skip_reason"],
                    location=data["location"],
                    note=data["note"],
                )
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                patient_admin.log_addition(request, event, [{"added": {}}])
                messages.success(request, _dose_recorded(event, form.fields["occurred_at"]))
                return _back_to(patient)
        rx = getattr(form, "clinic_only_prescription", None)
        if rx is not None:
            sessions = reverse("admin:tracker_inclinicsession_add") + f"?prescription={rx.pk}"
            messages.error(
                request,
                format_html(
                    '{} is recorded as an in-clinic session: <a href="{}">In-clinic sessions ▸ Add</a>.',
                    rx.drug,
                    sessions,
                ),
            )
    return _render(
        request,
        patient_admin,
        patient,
        form,
        title=f"Record a dose for {patient.full_name}",
        submit_label="Record dose",
        intro="A dose given here, or one the patient reports by phone. It is matched to the planned dose as "
        "when the patient logs it. Esketamine and ketamine are recorded as in-clinic sessions instead.",
    )


def _dose_recorded(event: DoseEvent, field: LocalDateTimeField) -> str:
    zone = event.patient.zone
    what = "taken" if event.outcome == DoseEvent.Outcome.TAKEN else f"skipped ({event.skip_reason})"
    where = "at the clinic" if event.location == DoseEvent.Location.CLINIC else "reported by phone"
    if event.planned_dose is not None:
        planned = local_text(event.planned_dose.due_at, zone)
        timing = f", {event.get_timing_display().lower()}" if event.timing else ""
        match = f"It answers the dose planned for {planned}{timing}."
    else:
        match = "No planned dose was near that time: it is recorded as unplanned."
    when = local_text(event.occurred_at, zone)
    note = repeated_note(field, event.occurred_at, zone)
    return f"Recorded {event.prescription.drug} {what}, {where}, {when}. {match}{note}"
