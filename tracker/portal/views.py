"""Patient portal views: resolve the patient from the login, read via selectors, write via one service call.

Every view takes the patient from ``request.user`` and looks ids up only among that
patient's rows, so another patient's id answers 404 exactly like an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import dateformat, timezone, translation
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from tracker import clinical, scales, side_effect_catalogue
from tracker.models import Assessment, DoseEvent, Patient, PlannedDose, Prescription
from tracker.portal import charts, forms, selectors
from tracker.portal import language as portal_language
from tracker.selectors import adherence, caseload
from tracker.services import assessments as assessment_service
from tracker.services import doses as dose_service
from tracker.services import languages as language_service
from tracker.services import reminders as reminder_service
from tracker.services.errors import ServiceError

PatientView = Callable[..., HttpResponse]
PATIENT = DoseEvent.Reporter.PATIENT
PROGRESS_WEEKS = 4
PROGRESS_SHARE_DAYS = (7, 30)  # "My progress": the taken share over the last week and month
CHART_WEEKS = 12


def patient_required(view: PatientView) -> PatientView:
    """Log in first; then only a user linked to a patient record gets in, in that patient's zone."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        patient = (
            Patient.objects.current().select_related("clinic").filter(user_id=request.user.pk).first()
        )  # the patient and their clinic in one query
        if patient is None:
            return render(request, "portal/not_a_patient.html", status=403)
        # Dates and times on the page, and times typed into forms, are the patient's own;
        # so is the language (Patient.language), whatever the browser asks for.
        with timezone.override(patient.zone), translation.override(language_of(patient)):
            response = view(request, patient, *args, **kwargs)
        language = language_of(patient)  # again: the language switcher may just have changed it
        response.headers["Content-Language"] = language
        portal_language.remember(response, request, language)
        return response

    return wrapper


def language_of(patient: Patient) -> str:
    """The Django language for the patient's portal (Patient.language)."""
    return portal_language.django_language(patient.language)


def _posted(request: HttpRequest) -> Any:
    """The submitted data on a POST, else None so the form starts unbound."""
    return request.POST if request.method == "POST" else None


def _form_page(request: HttpRequest, template: str, form: Any, **context: Any) -> HttpResponse:
    """A form page; 400 when it comes back with errors, so tools and tests see the refusal."""
    return render(request, template, {"form": form, **context}, status=400 if form.is_bound else 200)


def _today_page(
    request: HttpRequest,
    patient: Patient,
    now: dt.datetime,
    *,
    failed_dose_id: int | None = None,
    failed_form: forms.DoseLogForm | None = None,
    confirm_extra: bool = False,
    undo_error: str = "",
    status: int = 200,
) -> HttpResponse:
    today = selectors.today_for_patient(patient, now)
    return render(
        request,
        "portal/today.html",
        {
            "patient": patient,
            "today": today,
            "session_today": selectors.todays_session_advice(today, now),
            "now": now,
            "recent_logs": selectors.undoable_logs(patient, now),
            "undo_minutes": clinical.get("PATIENT_UNDO_MINUTES"),
            "skip_choices": forms.skip_choices(),
            "failed_dose_id": failed_dose_id,
            "failed_form": failed_form,
            "confirm_extra": confirm_extra,
            "undo_error": undo_error,
        },
        status=status,
    )


@patient_required
@require_http_methods(["GET", "HEAD"])
def today(request: HttpRequest, patient: Patient) -> HttpResponse:
    return _today_page(request, patient, timezone.now())


@patient_required
@require_POST
def log_dose(request: HttpRequest, patient: Patient, planned_dose_id: int) -> HttpResponse:
    """Taken, skipped or taken at another time, for one planned dose of the patient's own.

    A time outside the dose's §7 window comes back once with "Yes, log it as an extra
    dose"; only that second submit stores it, as an unplanned dose.
    """
    now = timezone.now()
    planned = selectors.own_planned_dose(patient, planned_dose_id)
    form = forms.DoseLogForm(request.POST)
    confirm_extra = False
    if form.is_valid():
        try:
            event = _record_own_dose(request, planned, now, form.service_arguments(now))
        except ServiceError as error:
            confirm_extra = forms.has_code(error, dose_service.OUTSIDE_WINDOW)
            forms.add_service_error(form, error, forms.DoseLogForm.SERVICE_FIELDS)
        else:
            messages.success(request, _saved_message(event))
            return redirect("portal:today")
    return _today_page(
        request,
        patient,
        now,
        failed_dose_id=planned.pk,
        failed_form=form,
        confirm_extra=confirm_extra,
        status=400,
    )


def _record_own_dose(request: HttpRequest, planned: PlannedDose, now: dt.datetime, arguments: dict) -> DoseEvent:
    """record_dose for one of the patient's own planned doses, reported and recorded by them."""
    return dose_service.record_dose(
        prescription=planned.prescription,
        planned_dose=planned,
        reporter=PATIENT,
        recorded_by=request.user,
        now=now,
        **arguments,
    )


@patient_required
@require_POST
def undo_log(request: HttpRequest, patient: Patient, event_id: int) -> HttpResponse:
    """Take back a tap made by mistake, within the undo window; the record stays, in error."""
    now = timezone.now()
    event = selectors.own_dose_event(patient, event_id)
    try:
        dose_service.undo_patient_log(event=event, by=request.user, now=now)
    except ServiceError as error:
        return _today_page(request, patient, now, undo_error=" ".join(error.messages), status=400)
    if event.outcome == DoseEvent.Outcome.SKIPPED:
        text = _(
            "Undone: %(medicine)s is no longer recorded as skipped at %(when)s. "
            "It stays in your history, marked as a mistake."
        )
    else:
        text = _(
            "Undone: %(medicine)s is no longer recorded as taken at %(when)s. "
            "It stays in your history, marked as a mistake."
        )
    messages.success(request, text % {"medicine": event.prescription.drug, "when": _when(event.occurred_at)})
    return redirect("portal:today")


@patient_required
@require_POST
def send_offline_tap(request: HttpRequest, patient: Patient, planned_dose_id: int) -> JsonResponse:
    """A "Taken" tap the phone kept while offline, sent now: stored once, at the time it was tapped.

    Answers JSON to the page's script (static/portal/offline.js): 200 with the saved message,
    or 400/404 with the reason, both final, so the phone forgets the tap. A resend with the
    same key answers 200 with the dose already stored. The message is also queued for the
    next page, which the script loads when it is on Today.
    """
    now = timezone.now()
    try:
        planned = selectors.own_planned_dose(patient, planned_dose_id)
    except Http404:
        return _offline_refusal(request, [_("That dose is no longer in your plan, so it was not saved.")], status=404)
    form = forms.OfflineTapForm(request.POST)
    if form.is_valid():
        try:
            event = _record_own_dose(request, planned, now, form.service_arguments(now))
        except ServiceError as error:
            forms.add_service_error(form, error, forms.OfflineTapForm.SERVICE_FIELDS)
        else:
            message = _saved_message(event)
            messages.success(request, message)
            return JsonResponse({"saved": True, "event": event.pk, "message": message})
    errors = [message for field_errors in form.errors.values() for message in field_errors]
    drug = planned.prescription.drug
    return _offline_refusal(
        request,
        [_("%(medicine)s was not saved: %(reason)s") % {"medicine": drug, "reason": message} for message in errors],
        status=400,
    )


def _offline_refusal(request: HttpRequest, errors: list[str], *, status: int) -> JsonResponse:
    for message in errors:
        messages.error(request, message)
    return JsonResponse({"saved": False, "errors": errors}, status=status)


def _when(moment: dt.datetime) -> str:
    """ "08:30 on 7 December" in the patient's zone and language (the day's format is translated)."""
    local = timezone.localtime(moment)
    return _("%(time)s on %(day)s") % {"time": f"{local:%H:%M}", "day": dateformat.format(local, _("j F"))}


def _saved_message(event: DoseEvent) -> str:
    drug = event.prescription.drug
    if event.outcome == DoseEvent.Outcome.SKIPPED:
        return _("Saved: you skipped %(medicine)s. Thank you for letting us know.") % {"medicine": drug}
    values = {"medicine": drug, "when": _when(event.occurred_at)}
    if event.planned_dose_id is None and event.timing == DoseEvent.Timing.UNPLANNED:
        return _("Saved: %(medicine)s taken at %(when)s as an extra dose.") % values
    return _("Saved: %(medicine)s taken at %(when)s.") % values


def _when_and_note(
    request: HttpRequest, prescription: Prescription, record: Callable[..., DoseEvent]
) -> tuple[forms.TakenNowOrAtForm, DoseEvent | None]:
    """Run the "when, and a note" form through ``record`` (record_dose or report_outside_clinic)."""
    now = timezone.now()
    form = forms.TakenNowOrAtForm(_posted(request))
    if not form.is_valid():
        return form, None
    try:
        event = record(
            prescription=prescription,
            occurred_at=form.occurred_at(now),
            reporter=PATIENT,
            recorded_by=request.user,
            note=form.cleaned_data["note"],
            now=now,
        )
    except ServiceError as error:
        forms.add_service_error(form, error, forms.TakenNowOrAtForm.SERVICE_FIELDS)
        return form, None
    return form, event


@patient_required
@require_http_methods(["GET", "HEAD", "POST"])
def log_as_needed(request: HttpRequest, patient: Patient, prescription_id: int) -> HttpResponse:
    """An as-needed (PRN) dose: now, or at a time the patient gives."""
    prescription = selectors.own_prescription(patient, prescription_id)
    prescription.patient = patient
    form, event = _when_and_note(request, prescription, dose_service.record_dose)
    if event is not None:
        messages.success(request, _saved_message(event))
        return redirect("portal:today")
    return _form_page(request, "portal/as_needed_form.html", form, patient=patient, prescription=prescription)


@patient_required
@require_http_methods(["GET", "HEAD", "POST"])
def report_outside_clinic(request: HttpRequest, patient: Patient, prescription_id: int) -> HttpResponse:
    """The explicit path for a clinic-only medicine taken elsewhere: stored, and the clinic told."""
    prescription = selectors.own_prescription(patient, prescription_id)
    if not prescription.drug.in_clinic_only:
        raise Http404("Only clinic-only medicines have an outside-clinic report.")
    prescription.patient = patient
    form, event = _when_and_note(request, prescription, dose_service.report_outside_clinic)
    if event is not None:
        return redirect("portal:outside_clinic_reported", prescription_id=prescription.pk)
    return _form_page(request, "portal/outside_clinic_form.html", form, patient=patient, prescription=prescription)


@patient_required
@require_http_methods(["GET", "HEAD"])
def outside_clinic_reported(request: HttpRequest, patient: Patient, prescription_id: int) -> HttpResponse:
    prescription = selectors.own_prescription(patient, prescription_id)
    return render(request, "portal/outside_clinic_reported.html", {"patient": patient, "prescription": prescription})


@patient_required
@require_http_methods(["GET", "HEAD"])
def questionnaires(request: HttpRequest, patient: Patient) -> HttpResponse:
    due = selectors.questionnaires_due(patient, timezone.now())
    return render(request, "portal/questionnaires.html", {"patient": patient, "due": due})


PORTAL_SCALES = {s.code: s for s in (scales.PHQ9, scales.GAD7, scales.ASEX, scales.PCL5)}


@patient_required
@require_http_methods(["GET", "HEAD", "POST"])
def questionnaire(request: HttpRequest, patient: Patient, instrument: str) -> HttpResponse:
    """One questionnaire on one page; a PHQ-9 with thoughts of self-harm flags in the same save.

    ASEX and PCL-5 only for the courses they follow (selectors.BY_COURSE); to anyone else they
    do not exist, as an unknown questionnaire.
    """
    scale = PORTAL_SCALES.get(instrument)
    if scale is None:
        raise Http404("No such questionnaire.")
    if scale.code in selectors.BY_COURSE and scale.code not in {
        d.instrument for d in selectors.questionnaires_due(patient, timezone.now())
    }:
        raise Http404("This questionnaire is not part of your care plan.")
    form = forms.QuestionnaireForm(_posted(request), scale=scale)
    if form.is_valid():
        try:
            submitted = assessment_service.submit_assessment(
                patient=patient,
                instrument=scale.code,
                answers=form.answers(),
                source=Assessment.Source.PATIENT,
                recorded_by=request.user,
            )
        except ServiceError as error:
            forms.add_service_error(form, error, {})
        else:
            return redirect("portal:result", assessment_id=submitted.assessment.pk)
    title = selectors.INSTRUMENT_NAMES[scale.code]
    return _form_page(request, "portal/questionnaire_form.html", form, patient=patient, scale=scale, title=title)


@patient_required
@require_http_methods(["GET", "HEAD", "POST"])
def checkin(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The weekly side-effect check-in: the effects common to the patient's medicines first, by name."""
    now = timezone.now()
    drugs = selectors.checkin_drugs(patient, now)
    form = forms.CheckinForm(
        _posted(request),
        effect_choices=side_effect_catalogue.choices_for(drugs.classes),
        common=side_effect_catalogue.common_codes(drugs.classes),
    )
    if form.is_valid():
        try:
            assessment, _ = assessment_service.submit_checkin(
                patient=patient,
                fibser_answers=form.fibser_answers(),
                effects=form.effects(),
                recorded_by=request.user,
                now=now,
            )
        except ServiceError as error:
            forms.add_service_error(form, error, forms.CheckinForm.SERVICE_FIELDS)
        else:
            return redirect("portal:result", assessment_id=assessment.pk)
    # The view's "_" is taken by submit_checkin's second value, hence translation.gettext.
    medicines = get_text_list(drugs.names, translation.gettext("and"))
    return _form_page(request, "portal/checkin_form.html", form, patient=patient, medicines=medicines)


@patient_required
@require_http_methods(["GET", "HEAD"])
def result(request: HttpRequest, patient: Patient, assessment_id: int) -> HttpResponse:
    """The saved answers; crisis guidance first when PHQ-9 question 9 says so."""
    found = selectors.own_result(patient, assessment_id)
    return render(
        request,
        "portal/result.html",
        {
            "patient": patient,
            "result": found,
            "title": selectors.INSTRUMENT_NAMES.get(found.assessment.instrument, found.scale.name),
            "crisis_guidance": selectors.crisis_guidance(patient.clinic) if found.crisis else [],
            "crisis_numbers": selectors.crisis_numbers(patient.clinic) if found.crisis else [],
        },
    )


@patient_required
@require_http_methods(["GET", "HEAD"])
def progress(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Taken shares over 7 and 30 days, the next clinic session, adherence calendar, score charts, medicines."""
    now = timezone.now()
    today = selectors.local_today(patient, now)
    history = selectors.score_history(patient, now, weeks=CHART_WEEKS)
    first = today - dt.timedelta(weeks=CHART_WEEKS)
    # The caseload's own adherence share (tracker/selectors/caseload.py), over two windows.
    shares = {days: caseload.adherence([patient.pk], now, days=days).get(patient.pk) for days in PROGRESS_SHARE_DAYS}
    session = caseload.next_sessions([patient.pk], now).get(patient.pk)
    medicines = selectors.medicines(selectors.active_schedules(patient, now))
    return render(
        request,
        "portal/progress.html",
        {
            "patient": patient,
            "shares": list(shares.items()),
            "next_session": session,
            "observation_hours": clinical.get("ESK_MIN_OBSERVATION_MINUTES") // 60,
            "calendar": selectors.adherence_calendar(patient, now, weeks=PROGRESS_WEEKS),
            "charts": [charts.line_chart(code, series, first, today) for code, series in history.items()],
            "medicines": medicines,
            "before_session": selectors.next_session_advice(session[0], medicines) if session else [],
            "streak": adherence.dose_streak(patient, now),
        },
    )


@patient_required
@require_http_methods(["GET", "HEAD", "POST"])
def reminders(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Email reminders the patient controls: per medicine on/off and how early, and quiet hours."""
    now = timezone.now()
    medicines = selectors.reminder_medicines(patient, now)
    quiet = getattr(patient, "reminder_settings", None)
    initial = {"quiet_from": quiet.quiet_from, "quiet_until": quiet.quiet_until} if quiet else {}
    form = forms.ReminderSettingsForm(_posted(request), initial=initial, medicines=medicines)
    if form.is_valid():
        try:
            reminder_service.save_reminder_settings(
                patient=patient,
                quiet_from=form.cleaned_data["quiet_from"],
                quiet_until=form.cleaned_data["quiet_until"],
                choices=form.choices(),
                now=now,
            )
        except ServiceError as error:
            forms.add_service_error(form, error, form.SERVICE_FIELDS)
        else:
            messages.success(request, _("Saved: your reminder settings."))
            return redirect("portal:reminders")
    return _form_page(
        request,
        "portal/reminders.html",
        form,
        patient=patient,
        address=patient.email or getattr(patient.user, "email", ""),
    )


@patient_required
@require_POST
def change_language(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The portal's language switcher: stores Patient.language (with its history) and goes back.

    The page the patient came from is opened again, now in the chosen language; an address
    that is not this site's is ignored for Today.
    """
    form = forms.LanguageForm(request.POST)
    # Only the language decides: an unusable ``next`` (say, with a null character) means Today,
    # never a lost choice or an empty error banner.
    form.is_valid()
    if "language" in form.cleaned_data:
        language_service.set_portal_language(patient=patient, language=form.cleaned_data["language"])
        with translation.override(language_of(patient)):
            messages.success(request, _("Saved: the portal now shows in English."))
        return redirect(form.next_url(request))
    messages.error(request, " ".join(form.errors["language"]))
    return redirect("portal:today")
