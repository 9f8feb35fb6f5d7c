"""The REMS Patient Monitoring Form, filled from the session record (clinical-reference §1).

§1 setting: an outpatient setting files one form per esketamine session; an inpatient setting
files none, so inpatient sessions, IV ketamine, sessions entered in error and sessions with no
dose given (withheld, or no first device yet) have no form. The clinic exports the forms of a
range of its local days as CSV, or prints one session's form. Both are admin views for users
who may view sessions, scoped through the session admin's clinic queryset.

Every column names its source in ``COLUMNS`` (``source``): the line of §1 "REMS Patient
Monitoring Form" it answers and the session field it is read from. The record does not hold the
patient's sex, the monitoring clinician's own phone (the setting's phone is given) or the REMS
evaluation question ("when would the patient have been ready without the 2-hour rule"); those
are left for the clinician to fill in on the form itself.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tracker import clinical
from tracker.admin.exports import ClinicExportForm, csv_response
from tracker.admin.scoping import clinician_for
from tracker.models import InClinicSession, Prescription
from tracker.models.drugs import Route
from tracker.models.sessions import MOAAS_RANGE, bp_over_threshold, bp_text

if TYPE_CHECKING:
    from tracker.admin.sessions import InClinicSessionAdmin

FORM_TEMPLATE = "admin/tracker/inclinicsession/rems_form.html"
EXPORT_TEMPLATE = "admin/tracker/service_form.html"
FORM_SECTION = "§1 REMS Patient Monitoring Form"
CONCOMITANT_LABELS = {
    "benzodiazepines": "Benzodiazepines",
    "non_benzodiazepine_sedative_hypnotics": "Non-benzodiazepine sedative hypnotics",
    "psychostimulants": "Psychostimulants",
    "maois": "Monoamine oxidase inhibitors (MAOIs)",
    "opioids": "Opioids",
}


def yes_no(value: bool | None) -> str:
    """The form's Y/N; blank when the record does not say (never a guessed N)."""
    return "" if value is None else ("Y" if value else "N")


@dataclass(frozen=True)
class RemsForm:
    """One session's form: the session and what the form needs beyond its own fields."""

    session: InClinicSession
    zone: zoneinfo.ZoneInfo  # the clinic's: its days and times are the form's
    first_treatment: bool
    concomitant: dict[str, list[str]]  # form column -> the drugs that answer Y (empty: N)

    @property
    def treatment_date(self) -> dt.date:
        assert self.session.first_device_at is not None  # only dosed sessions have a form
        return self.session.first_device_at.astimezone(self.zone).date()

    def local(self, instant: dt.datetime | None) -> str:
        """'2026-06-03 10:00 BST': the clinic's wall clock, with the zone named."""
        if instant is None:
            return ""
        local = instant.astimezone(self.zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    @property
    def dose(self) -> str:
        """§1 form: 56 / 84 / other mg; §1 devices: 28 mg each."""
        amount = self.session.dose_amount
        if amount is None:
            return ""
        mg = int(amount)
        # The form's boxes: the label's two session doses (§1 dosing by phase), else "other".
        return str(mg) if mg in set(clinical.get("ESK_DAY1_DOSE_MG").values()) else f"other: {mg} mg"

    @property
    def sedation(self) -> bool | None:
        """§4 MOAA/s: 5 is fully alert, so any lowest score below 5 is sedation."""
        lowest = self.session.moaas_lowest
        return None if lowest is None else lowest < MOAAS_RANGE[1]

    @property
    def dissociation(self) -> bool | None:
        """[P] REMS_DISSOCIATION_CADSS_ABOVE (§4 CADSS has no cut-off), or unresolved at discharge."""
        s = self.session
        if s.dissociation_resolved is False:
            return True
        if s.cadss_total is None:
            return None
        return s.cadss_total > clinical.get("REMS_DISSOCIATION_CADSS_ABOVE")


def bp_acceptable(systolic: int | None, diastolic: int | None) -> bool | None:
    """§1 bp_threshold: acceptable when neither value is over it; unknown when not measured."""
    if systolic is None or diastolic is None:
        return None
    return not bp_over_threshold(systolic, diastolic)


@dataclass(frozen=True)
class Column:
    name: str  # the CSV header
    label: str  # the form's words, on the printable page
    source: str  # where the value comes from (§1 form line; session or patient field)
    value: Callable[[RemsForm], Any]


def _concomitant_column(key: str) -> Column:
    return Column(
        f"concomitant_{key}",
        f"Concomitant: {CONCOMITANT_LABELS[key]}",
        f"{FORM_SECTION}, concomitant medicines: the patient's prescriptions active on the treatment date, by "
        f"drug class or ATC code (clinical.REMS_CONCOMITANT_CLASSES['{key}'])",
        lambda f: yes_no(bool(f.concomitant[key])),
    )


COLUMNS: tuple[Column, ...] = (
    Column("session_id", "Session", "InClinicSession.id (the tracker's, not on the form)", lambda f: f.session.pk),
    Column(
        "record_number",
        "Record number",
        "Patient.record_number (the tracker's, not on the form)",
        lambda f: f.session.patient.record_number,
    ),
    Column(
        "patient_name",
        "Patient name",
        f"{FORM_SECTION}, patient name: Patient.full_name",
        lambda f: f.session.patient.full_name,
    ),
    Column(
        "date_of_birth",
        "Date of birth",
        f"{FORM_SECTION}, date of birth: Patient.date_of_birth",
        lambda f: f.session.patient.date_of_birth.isoformat(),
    ),
    Column(
        "first_treatment",
        "First treatment",
        f"{FORM_SECTION}, first treatment (Y/N): no earlier esketamine session with a dose on record",
        lambda f: yes_no(f.first_treatment),
    ),
    Column(
        "enrolled",
        "Patient enrolled in the REMS",
        f"{FORM_SECTION}, enrolled (Y/N): Patient.rems_enrolled_on on or before the treatment date",
        lambda f: yes_no(
            f.session.patient.rems_enrolled_on is not None and f.session.patient.rems_enrolled_on <= f.treatment_date
        ),
    ),
    Column(
        "enrolled_on",
        "Enrolled on",
        "Patient.rems_enrolled_on",
        lambda f: f.session.patient.rems_enrolled_on.isoformat() if f.session.patient.rems_enrolled_on else "",
    ),
    *(_concomitant_column(key) for key in CONCOMITANT_LABELS),
    Column(
        "monitoring_hcp",
        "Monitoring healthcare provider",
        f"{FORM_SECTION}, monitoring HCP name: InClinicSession.administered_by",
        lambda f: str(f.session.administered_by),
    ),
    Column(
        "monitoring_hcp_email",
        "Monitoring HCP email",
        f"{FORM_SECTION}, monitoring HCP email: the administering clinician's user email",
        lambda f: f.session.administered_by.user.email,
    ),
    Column(
        "setting_name",
        "Setting name",
        f"{FORM_SECTION}, setting name: Clinic.name (the patient's clinic)",
        lambda f: f.session.patient.clinic.name,
    ),
    Column(
        "setting_address",
        "Setting address",
        f"{FORM_SECTION}, setting address: Clinic.address",
        lambda f: " ".join(f.session.patient.clinic.address.split()),
    ),
    Column(
        "setting_phone",
        "Setting phone",
        f"{FORM_SECTION}, monitoring HCP phone: Clinic.phone (the setting's)",
        lambda f: f.session.patient.clinic.phone,
    ),
    Column(
        "treatment_date",
        "Treatment date",
        f"{FORM_SECTION}, treatment date: InClinicSession.first_device_at, the clinic's local day",
        lambda f: f.treatment_date.isoformat(),
    ),
    Column(
        "dose_mg",
        "Dose (mg)",
        f"{FORM_SECTION}, dose 56 / 84 / other: InClinicSession.devices × 28 mg (§1 devices)",
        lambda f: f.dose,
    ),
    Column(
        "lot_number",
        "Lot number",
        f"{FORM_SECTION}, lot number: InClinicSession.lot_number",
        lambda f: f.session.lot_number,
    ),
    Column(
        "monitoring_minutes",
        "Total minutes from the first device to completion of monitoring",
        f"{FORM_SECTION}, total minutes; §1 observation_clock: InClinicSession.first_device_at to discharge_at",
        lambda f: f.session.observation_minutes,
    ),
    Column(
        "vitals_acceptable_before_administration",
        "Vital signs acceptable before administration",
        f"{FORM_SECTION}, vital signs acceptable (Y/N): BP before dosing within §1 bp_threshold",
        lambda f: yes_no(bp_acceptable(f.session.bp_before_systolic, f.session.bp_before_diastolic)),
    ),
    Column(
        "vitals_acceptable_before_completion",
        "Vital signs acceptable before completion of monitoring",
        f"{FORM_SECTION}, vital signs acceptable (Y/N): BP at discharge within §1 bp_threshold",
        lambda f: yes_no(bp_acceptable(f.session.bp_discharge_systolic, f.session.bp_discharge_diastolic)),
    ),
    Column(
        "bp_before_administration",
        "Blood pressure before administration",
        f"{FORM_SECTION}, BP before administration: InClinicSession.bp_before_*",
        lambda f: bp_text(f.session.bp_before_systolic, f.session.bp_before_diastolic),
    ),
    Column(
        "bp_40_minutes",
        "Blood pressure at 40 minutes",
        f"{FORM_SECTION}, BP at 40 min: InClinicSession.bp_40min_* (§1 bp_40min_window)",
        lambda f: bp_text(f.session.bp_40min_systolic, f.session.bp_40min_diastolic),
    ),
    Column(
        "bp_40_minutes_taken_at",
        "40-minute blood pressure taken at",
        "InClinicSession.bp_40min_at, clinic's local time",
        lambda f: f.local(f.session.bp_40min_at),
    ),
    Column(
        "bp_before_completion",
        "Blood pressure before completion of monitoring",
        f"{FORM_SECTION}, BP before completion: InClinicSession.bp_discharge_*",
        lambda f: bp_text(f.session.bp_discharge_systolic, f.session.bp_discharge_diastolic),
    ),
    Column(
        "spo2_lowest",
        "Lowest SpO2 (%)",
        "§1 respiratory (pulse oximetry): InClinicSession.spo2_lowest",
        lambda f: f.session.spo2_lowest,
    ),
    Column(
        "sedation",
        "Sedation",
        f"{FORM_SECTION}, sedation (Y/N): InClinicSession.moaas_lowest below 5 (§4 MOAA/s)",
        lambda f: yes_no(f.sedation),
    ),
    Column(
        "dissociation",
        "Dissociation",
        f"{FORM_SECTION}, dissociation (Y/N): InClinicSession.cadss_total above "
        "clinical.REMS_DISSOCIATION_CADSS_ABOVE [P], or dissociation_resolved No at discharge",
        lambda f: yes_no(f.dissociation),
    ),
    Column(
        "respiratory_depression",
        "Respiratory depression",
        f"{FORM_SECTION}, respiratory depression (Y/N): InClinicSession.respiratory_depression",
        lambda f: yes_no(f.session.respiratory_depression),
    ),
    Column(
        "adverse_events",
        "Adverse events",
        f"{FORM_SECTION}, adverse events: InClinicSession.adverse_events",
        lambda f: f.session.adverse_events,
    ),
    Column(
        "form_submitted",
        "Form submitted",
        "§1 submit within 7 days: InClinicSession.rems_form_submitted_at set",
        lambda f: yes_no(f.session.rems_form_submitted_at is not None),
    ),
    Column(
        "form_submitted_at",
        "Form submitted at",
        "InClinicSession.rems_form_submitted_at, clinic's local time",
        lambda f: f.local(f.session.rems_form_submitted_at),
    ),
)
HEADER = [c.name for c in COLUMNS]


# --- Reads ------------------------------------------------------------------------------------


def form_sessions(sessions: QuerySet[InClinicSession]) -> QuerySet[InClinicSession]:
    """Of ``sessions``, those that file a form (§1 setting), with what the form reads, in 3 queries.

    Query 1: the sessions with patient, clinic, clinician, drug and an EXISTS for an earlier
    esketamine dose; query 2: the patients' prescriptions with their drugs (concomitant medicines).
    """
    earlier = InClinicSession.objects.filter(
        patient=OuterRef("patient"),
        route=Route.NASAL,
        entered_in_error_at__isnull=True,
        first_device_at__lt=OuterRef("first_device_at"),
    )
    return (
        sessions.filter(
            route=Route.NASAL,
            care_setting=InClinicSession.CareSetting.OUTPATIENT,
            entered_in_error_at__isnull=True,
            first_device_at__isnull=False,
        )
        .exclude(status=InClinicSession.Status.WITHHELD)
        .select_related("patient__clinic", "administered_by__user", "prescription__drug")
        .prefetch_related(
            Prefetch(
                "patient__prescriptions",
                queryset=Prescription.objects.current().select_related("drug"),
                to_attr="rems_prescriptions",
            )
        )
        .annotate(has_earlier_dose=Exists(earlier))
        .order_by("first_device_at", "id")
    )


def _active_on(rx: Prescription, day: dt.date) -> bool:
    """Active that day, as the version was: a replaced or stopped version keeps its end date."""
    if rx.start_date > day:
        return False
    if rx.end_date is None:
        return rx.status == Prescription.Status.ACTIVE
    return day <= rx.end_date


def concomitant(prescriptions: Iterable[Prescription], day: dt.date) -> dict[str, list[str]]:
    """§1 form, concomitant medicines: per form column, the drugs active on ``day`` that answer Y."""
    found: dict[str, list[str]] = {key: [] for key in CONCOMITANT_LABELS}
    rules = clinical.get("REMS_CONCOMITANT_CLASSES")
    for rx in prescriptions:
        if not _active_on(rx, day):
            continue
        for key, drugs in found.items():
            rule = rules.get(key, {})
            by_class = rx.drug.drug_class in rule.get("classes", [])
            by_atc = any(rx.drug.atc_code.startswith(prefix) for prefix in rule.get("atc_prefixes", []))
            if (by_class or by_atc) and rx.drug.display_name not in drugs:
                drugs.append(rx.drug.display_name)
    return found


def rems_form(session: InClinicSession) -> RemsForm:
    """A session from ``form_sessions`` as its form."""
    zone = zoneinfo.ZoneInfo(session.patient.clinic.timezone)
    assert session.first_device_at is not None
    day = session.first_device_at.astimezone(zone).date()
    return RemsForm(
        session=session,
        zone=zone,
        first_treatment=not session.has_earlier_dose,  # type: ignore[attr-defined]
        concomitant=concomitant(session.patient.rems_prescriptions, day),  # type: ignore[attr-defined]
    )


def forms_between(sessions: QuerySet[InClinicSession], start: dt.date, end: dt.date) -> list[RemsForm]:
    """The forms of sessions on the clinic's local days ``start``..``end``.

    A day's margin either side in UTC (no zone is more than 14 h off), then each session is
    kept by its own clinic's local day.
    """
    margin = dt.timedelta(days=1)
    rows = form_sessions(sessions).filter(
        first_device_at__gte=dt.datetime.combine(start - margin, dt.time(0), tzinfo=dt.UTC),
        first_device_at__lt=dt.datetime.combine(end + margin * 2, dt.time(0), tzinfo=dt.UTC),
    )
    found = [rems_form(s) for s in rows]
    return [f for f in found if start <= f.treatment_date <= end]


def csv_rows(found: Sequence[RemsForm]) -> list[list[Any]]:
    return [[column.value(f) for column in COLUMNS] for f in found]


# --- Views ------------------------------------------------------------------------------------


class RemsExportForm(ClinicExportForm):
    """The clinic export's dates, read as the clinic's local days (the form's treatment date)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["start"].label = "First treatment date"
        self.fields["start"].help_text = "YYYY-MM-DD, the clinic's local day."
        self.fields["end"].label = "Last treatment date"
        self.fields["end"].help_text = "Included."


def rems_export_view(request: HttpRequest, session_admin: InClinicSessionAdmin) -> HttpResponse:
    """Without dates, the form; with bad dates, the form and its errors (400); else the CSV."""
    if not session_admin.has_view_permission(request):
        raise PermissionDenied("Only clinicians who may view in-clinic sessions can export REMS forms.")
    form = RemsExportForm(request.GET or None)
    if not form.is_valid():
        context = {
            **session_admin.admin_site.each_context(request),
            "opts": session_admin.opts,
            "title": "Export REMS Patient Monitoring Forms",
            "intro": "One row per outpatient esketamine session with a dose given on the clinic's local days "
            "chosen: every field of the REMS Patient Monitoring Form the record holds, and whether the "
            "form was submitted. Inpatient sessions file no form (clinical reference §1).",
            "form": form,
            "get": True,
            "submit_label": "Download CSV",
        }
        return TemplateResponse(request, EXPORT_TEMPLATE, context, status=400 if form.is_bound else 200)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    found = forms_between(session_admin.get_queryset(request), start, end)
    membership = clinician_for(request)
    slug = membership.clinic.slug if membership else "all-clinics"
    return csv_response(f"{slug}-rems-forms-{start:%Y%m%d}-{end:%Y%m%d}.csv", HEADER, csv_rows(found))


def no_form_reason(session: InClinicSession) -> str | None:
    """Why a session files no form, in a clinician's words (§1 setting); None if it files one."""
    if session.route != Route.NASAL:
        return "This session is not esketamine: the REMS Patient Monitoring Form is for esketamine (Spravato) only."
    if session.care_setting == InClinicSession.CareSetting.INPATIENT:
        return "This session was given in an inpatient setting, which files no REMS Patient Monitoring Form."
    if session.is_entered_in_error:
        return "This session was marked as entered in error, so it has no REMS form."
    if session.status == InClinicSession.Status.WITHHELD or session.first_device_at is None:
        return "No dose was given in this session (withheld, or no first device recorded yet), so it has no REMS form."
    return None


def rems_form_view(request: HttpRequest, object_id: int, session_admin: InClinicSessionAdmin) -> HttpResponse:
    """One session's form, to print; a session without a form says why (404)."""
    session = session_admin.get_object(request, str(object_id))  # None outside the user's clinic
    if session is None:
        raise Http404("No in-clinic session with that number in your clinic.")
    if not session_admin.has_view_permission(request, session):
        raise PermissionDenied("Only clinicians who may view in-clinic sessions can see REMS forms.")
    context: dict[str, Any] = {
        **session_admin.admin_site.each_context(request),
        "opts": session_admin.opts,
        "original": session,
        "title": "REMS Patient Monitoring Form",
    }
    reason = no_form_reason(session)
    if reason is not None:
        context["no_form_reason"] = reason
        return TemplateResponse(request, FORM_TEMPLATE, context, status=404)
    found = rems_form(form_sessions(InClinicSession.objects.filter(pk=session.pk)).get())
    context.update(
        form=found,
        rows=[(column.label, column.value(found), column.source) for column in COLUMNS],
        concomitant=[(CONCOMITANT_LABELS[key], drugs) for key, drugs in found.concomitant.items()],
        zone_name=found.zone.key,
    )
    return TemplateResponse(request, FORM_TEMPLATE, context)
