"""API views: scoped querysets, and writes that make one service call each.

Every viewset's ``get_queryset`` is limited to the caller's reach (``Actor.scope``): a
clinician's clinic, or the patient themselves. Nothing is ever deleted (no DELETE route
answers anything but 405); a wrong record is marked entered in error instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from tracker import fhir, scheduling
from tracker.api import filters
from tracker.api import serializers as s
from tracker.api.descriptions import described
from tracker.api.errors import call_service
from tracker.api.permissions import (
    Actor,
    ClinicianOnly,
    ClinicianOrPatientCreates,
    HasTrackerRole,
    PrescriberOnly,
    StaffModelPermission,
    actor_for,
)
from tracker.models import (
    Assessment,
    ClinicalMeasurement,
    DoseEvent,
    DoseSchedule,
    Drug,
    Flag,
    InClinicSession,
    Patient,
    PatientAccess,
    PlannedDose,
    Prescription,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.services import assessments as assessment_service
from tracker.services import doses as dose_service
from tracker.services import flags as flag_service
from tracker.services import measurements as measurement_service
from tracker.services import prescriptions as rx_service
from tracker.services import sessions as session_service
from tracker.services.access import record_access, record_list_access
from tracker.services.prescriptions import ScheduleSpec
from tracker.services.records import mark_entered_in_error

READ = (IsAuthenticated, HasTrackerRole)

# A refusal about a sent regimen comes back inside it, as DRF nests a nested serializer's errors:
# {"regimen": {"weekdays": [...]}}. Regimen.specs says "regimen" for the kind that does not fit
# the drug; the services say "schedules" for the day's total, which the times make.
REGIMEN_ERRORS = {
    "regimen": "kind",
    "schedules": "times_of_day",
    "times_of_day": "times_of_day",
    "weekdays": "weekdays",
    "interval_days": "interval_days",
    "prn_max_doses_per_day": "prn_max_doses_per_day",
    "continuation_every_weeks": "continuation_every_weeks",
    "infusions": "infusions",
}


@contextmanager
def regimen_errors(data: dict[str, Any]) -> Iterator[None]:
    """Move the regimen's fields of a 400 under ``regimen`` when the request sent one."""
    try:
        yield
    except serializers.ValidationError as exc:
        if data.get("regimen") is None or not isinstance(exc.detail, dict):
            raise
        detail = dict(exc.detail)
        nested = {REGIMEN_ERRORS[name]: detail.pop(name) for name in list(detail) if name in REGIMEN_ERRORS}
        raise serializers.ValidationError({**detail, "regimen": nested} if nested else detail) from exc


def checked_specs(specs: list[ScheduleSpec], start_date: Any) -> list[ScheduleSpec]:
    """The schedule model's own checks (times as HH:MM, weekdays...), for specs that are not saved."""
    for spec in specs:
        DoseSchedule(
            kind=spec.kind,
            times_of_day=list(spec.times_of_day),
            weekdays=list(spec.weekdays),
            interval_days=spec.interval_days,
            prn_max_doses_per_day=spec.prn_max_doses_per_day,
            start_date=spec.start_date or start_date,
            end_date=spec.end_date,
        ).clean()
    return specs


class ScopedViewSet(viewsets.GenericViewSet):
    """Base: the caller's rows only, and a response shape separate from the request shape."""

    permission_classes: ClassVar[tuple[type[BasePermission], ...]] = READ
    patient_path: ClassVar[str] = "patient"
    read_serializer: ClassVar[type[serializers.Serializer]]
    input_serializers: ClassVar[dict[str, type[serializers.Serializer]]] = {}
    action_permissions: ClassVar[dict[str, tuple[type[BasePermission], ...]]] = {}

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        return self.actor.scope(self.base_queryset(), self.patient_path)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # An action's own serializer_class (set by @action) comes before the read shape.
        if self.action in self.input_serializers:
            return self.input_serializers[self.action]
        return self.serializer_class or self.read_serializer

    def get_permissions(self) -> list[BasePermission]:
        classes = self.action_permissions.get(self.action or "", self.permission_classes)
        return [permission() for permission in classes] + [StaffModelPermission()]

    @property
    def actor(self) -> Actor:
        return actor_for(self.request)

    def valid_input(self, request: Request) -> dict[str, Any]:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def respond(self, instance: Model, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.read_serializer(instance, context=self.get_serializer_context()).data, status=code)


class ReadOnlyScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    pass


class CreateScopedViewSet(ReadOnlyScopedViewSet):
    """Create via ``perform_create`` -> one service; patients may create their own reports."""

    permission_classes = (IsAuthenticated, ClinicianOrPatientCreates)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.respond(self.perform_create(self.valid_input(request)), status.HTTP_201_CREATED)

    def perform_create(self, data: dict[str, Any]) -> Model:  # type: ignore[override]
        raise NotImplementedError


class EnteredInErrorMixin:
    """``POST .../entered-in-error/``: the only way a clinical record leaves current care."""

    @extend_schema(request=s.EnteredInErrorSerializer, summary="Mark the record as entered in error")
    @action(
        detail=True,
        methods=["post"],
        url_path="entered-in-error",
        permission_classes=[IsAuthenticated, ClinicianOnly],
        serializer_class=s.EnteredInErrorSerializer,
    )
    def entered_in_error(self, request: Request, pk: str | None = None) -> Response:
        record = self.get_object()  # type: ignore[attr-defined]
        data = self.valid_input(request)  # type: ignore[attr-defined]
        marked = call_service(mark_entered_in_error, record=record, by=request.user, reason=data["reason"])
        return self.respond(marked)  # type: ignore[attr-defined]


def clinical_record_schema(
    read: type[serializers.Serializer], create: type[serializers.Serializer] | None = None
) -> Any:
    """Schema of the shared actions: each viewset answers with its own read shape."""
    actions: dict[str, Any] = {"entered_in_error": extend_schema(responses=read)}
    if create is not None:
        actions["create"] = extend_schema(request=create, responses={201: read})
    return extend_schema_view(**actions)


# --- FHIR over HTTP: the media type FHIR clients send and expect ------------------------------


class FHIRJSONRenderer(JSONRenderer):
    """FHIR's JSON is plain JSON under its own media type (FHIR R4 §3.1.0.1.9 "Content Types")."""

    media_type = fhir.FHIR_JSON
    format = "json"


# Media ranges this endpoint can satisfy (application/json+fhir is the pre-R4 name HAPI still sends).
FHIR_ACCEPTS = ("application/fhir+json", "application/json+fhir", "application/json", "application/*", "*/*")
# ``_format`` values FHIR servers take for JSON ("+" arrives as a space when a client does not encode it).
FHIR_JSON_FORMATS = ("json", "application/json", "application/fhir+json", "application/json+fhir")


class FHIRContentNegotiation(BaseContentNegotiation):
    """``_format`` first, then ``Accept``, as FHIR servers do; anything but JSON of R4 is a 406."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = renderers[0]
        wanted = request.query_params.get("_format")
        if wanted is not None:
            if wanted.strip().replace(" ", "+").lower() in FHIR_JSON_FORMATS:
                return renderer, fhir.FHIR_JSON
            raise NotAcceptable(f"_format={wanted[:60]} is not served here; this server returns FHIR as JSON only.")
        accept = request.META.get("HTTP_ACCEPT", "").strip() or "*/*"
        for text in accept.split(","):
            media_range, *pairs = (part.strip() for part in text.split(";"))
            params = {key.strip().lower(): value.strip() for key, _, value in (p.partition("=") for p in pairs)}
            if params.get("q", "1") in {"0", "0.0", "0.00", "0.000"}:
                continue  # "not this one"
            if params.get("fhirversion", fhir.FHIR_VERSION) != fhir.FHIR_VERSION:
                continue  # another FHIR version (FHIR R4 §2.1.0.4)
            if media_range.lower() in FHIR_ACCEPTS:
                return renderer, fhir.FHIR_JSON
        raise NotAcceptable(
            f"Accept: {accept[:120]} is not served here; this server returns FHIR R4 as JSON only "
            "(Accept: application/fhir+json, application/json or */*, or _format=json)."
        )


# --- Patients, drugs, plans ----------------------------------------------------------------


@described
class PatientViewSet(ReadOnlyScopedViewSet):
    read_serializer = s.PatientSerializer
    patient_path = ""
    filterset_class = filters.PatientFilter
    ordering_fields = ("family_name", "given_name", "record_number", "date_of_birth", "id")
    ordering = ("family_name", "given_name", "id")

    def base_queryset(self) -> QuerySet[Patient]:
        return Patient.objects.select_related("clinic")

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        record_access(request, patient, PatientAccess.Surface.API_DETAIL)
        return self.respond(patient)

    @extend_schema(
        summary="The patient's course as a FHIR R4 Bundle (collection)",
        description="Served as `application/fhir+json; fhirVersion=4.0` to `Accept: application/fhir+json`, "
        "`application/json` or `*/*`, or with `_format=json` (which wins over Accept). Any other format "
        "(XML, Turtle) is a 406 with an OperationOutcome; so are the endpoint's other refusals.",
        parameters=[
            OpenApiParameter(
                "_format",
                str,
                OpenApiParameter.QUERY,
                enum=list(FHIR_JSON_FORMATS),
                description="FHIR's format override: json, application/json or application/fhir+json.",
            )
        ],
        responses={
            200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="A FHIR R4 Bundle of type collection."),
            406: OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="An OperationOutcome: only FHIR JSON is served."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="fhir",
        filter_backends=[],
        pagination_class=None,
        renderer_classes=[FHIRJSONRenderer],
        content_negotiation_class=FHIRContentNegotiation,
        # The bundle carries the clinicians' flags; it is for staff and their integrations.
        permission_classes=[IsAuthenticated, ClinicianOnly],
    )
    def fhir(self, request: Request, pk: str | None = None) -> Response:
        patient = self.get_object()
        record_access(request, patient, PatientAccess.Surface.FHIR)
        return Response(fhir.patient_bundle(patient), content_type=fhir.FHIR_JSON)

    def handle_exception(self, exc: Exception) -> Response:
        """The FHIR endpoint refuses as FHIR servers do: an OperationOutcome under the FHIR media type."""
        response = super().handle_exception(exc)
        if self.action == "fhir":
            detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
            response.data = fhir.operation_outcome(str(detail), status_code=response.status_code)
            response.content_type = fhir.FHIR_JSON
        return response

    # Last in the class body: defining ``list`` earlier would shadow the builtin for the lines after it.
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A page of patients; each patient on it gets an access row (one INSERT for the page)."""
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        patients = list(queryset) if page is None else page
        record_list_access(request, patients, PatientAccess.Surface.API_LIST)
        data = self.get_serializer(patients, many=True).data
        return Response(data) if page is None else self.get_paginated_response(data)


@described
class DrugViewSet(viewsets.ReadOnlyModelViewSet):
    """The clinic-independent drug catalogue, to find a drug's id for prescribing."""

    permission_classes = READ
    serializer_class = s.DrugSerializer
    queryset = Drug.objects.all()
    filterset_fields = ("drug_class", "in_clinic_only", "name")
    ordering_fields = ("name", "id")
    ordering = ("name",)


@described
class DoseScheduleViewSet(ReadOnlyScopedViewSet):
    read_serializer = s.DoseScheduleSerializer
    patient_path = "prescription__patient"
    filterset_class = filters.DoseScheduleFilter
    ordering_fields = ("start_date", "id")
    ordering = ("start_date", "id")

    def base_queryset(self) -> QuerySet[DoseSchedule]:
        return DoseSchedule.objects.all()


@described
class PlannedDoseViewSet(ReadOnlyScopedViewSet):
    read_serializer = s.PlannedDoseSerializer
    filterset_class = filters.PlannedDoseFilter
    ordering_fields = ("due_at", "id")
    ordering = ("due_at", "id")

    def base_queryset(self) -> QuerySet[PlannedDose]:
        return PlannedDose.objects.all()


@described
@clinical_record_schema(s.PrescriptionSerializer, s.PrescribeSerializer)
class PrescriptionViewSet(EnteredInErrorMixin, ReadOnlyScopedViewSet):
    """Prescriptions as versions: ``replaces`` / ``replaced_by`` link a dose change's chain."""

    read_serializer = s.PrescriptionSerializer
    input_serializers = {
        "create": s.PrescribeSerializer,
        "change_dose": s.ChangeDoseSerializer,
        "reschedule": s.RescheduleSerializer,
        "preview": s.PrescriptionPreviewRequestSerializer,
        "stop": s.StopSerializer,
    }
    action_permissions = {
        "create": (IsAuthenticated, PrescriberOnly),
        "change_dose": (IsAuthenticated, PrescriberOnly),
        "reschedule": (IsAuthenticated, PrescriberOnly),
        "preview": (IsAuthenticated, PrescriberOnly),
        "stop": (IsAuthenticated, PrescriberOnly),
    }
    filterset_class = filters.PrescriptionFilter
    ordering_fields = ("start_date", "created_at", "id")
    ordering = ("-start_date", "-id")

    def base_queryset(self) -> QuerySet[Prescription]:
        return Prescription.objects.select_related("drug", "replaced_by").prefetch_related("schedules")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.valid_input(request)
        with regimen_errors(data):
            specs = call_service(
                s.request_specs,
                data=data,
                drug=data["drug"],
                start_date=data["start_date"],
                end_date=data.get("end_date"),
            )
            rx = call_service(
                rx_service.prescribe,
                patient=data["patient"],
                drug=data["drug"],
                dose=data["dose"],
                dose_unit=data.get("dose_unit"),
                route=data.get("route"),
                start_date=data["start_date"],
                end_date=data.get("end_date"),
                indication=data["indication"],
                schedules=specs,
                prescriber=self.actor.clinician,
            )
        return self.respond(self.get_queryset().get(pk=rx.pk), status.HTTP_201_CREATED)

    @extend_schema(
        request=s.PrescriptionPreviewRequestSerializer,
        responses=s.PrescriptionPreviewSerializer,
        summary="Preview the next planned doses of a prescription, saving nothing",
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        data = self.valid_input(request)
        patient, drug = data["patient"], data["drug"]
        with regimen_errors(data):
            specs = call_service(
                s.request_specs, data=data, drug=drug, start_date=data["start_date"], end_date=data.get("end_date")
            )
            call_service(checked_specs, specs=specs, start_date=data["start_date"])
        instants = scheduling.preview(
            specs=specs,
            zone=patient.zone,
            rx_start_date=data["start_date"],
            rx_end_date=data.get("end_date"),
            drug_class=drug.drug_class,
            after=timezone.now(),
        )
        shown = {"timezone": patient.timezone, "due_at": [i.astimezone(patient.zone).isoformat() for i in instants]}
        return Response(s.PrescriptionPreviewSerializer(shown).data)

    @extend_schema(responses={201: s.PrescriptionSerializer}, summary="Change the dose: a new version")
    @action(detail=True, methods=["post"], url_path="change-dose")
    def change_dose(self, request: Request, pk: str | None = None) -> Response:
        rx = self.get_object()
        data = self.valid_input(request)
        new = call_service(
            rx_service.change_dose,
            rename={"change_reason": "reason", "start_date": "effective_date", "dose": "new_dose"},
            prescription=rx,
            new_dose=data["new_dose"],
            effective_date=data["effective_date"],
            reason=data["reason"],
            schedules=s.schedule_specs(data.get("schedules")),
            prescriber=self.actor.clinician,
        )
        return self.respond(self.get_queryset().get(pk=new.pk), status.HTTP_201_CREATED)

    @extend_schema(responses=s.PrescriptionSerializer, summary="New times or days for the same dose")
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk: str | None = None) -> Response:
        rx = self.get_object()
        data = self.valid_input(request)
        # A regimen starts today in the patient's zone (or at the start, if later), as in the admin.
        today = timezone.now().astimezone(rx.patient.zone).date()
        with regimen_errors(data):
            specs = call_service(
                s.request_specs, data=data, drug=rx.drug, start_date=max(today, rx.start_date), end_date=rx.end_date
            )
            call_service(
                rx_service.reschedule,
                rename={"change_reason": "reason"},
                prescription=rx,
                schedules=specs,
                reason=data["reason"],
                changed_by=request.user,
            )
        return self.respond(self.get_queryset().get(pk=rx.pk))

    @extend_schema(responses=s.PrescriptionSerializer, summary="Stop the prescription")
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        rx = self.get_object()
        data = self.valid_input(request)
        call_service(
            rx_service.stop_prescription,
            rename={"change_reason": "reason"},
            prescription=rx,
            end_date=data["end_date"],
            reason=data["reason"],
        )
        return self.respond(self.get_queryset().get(pk=rx.pk))


# --- What patients report --------------------------------------------------------------------


@described
@clinical_record_schema(s.DoseEventSerializer, s.DoseEventCreateSerializer)
class DoseEventViewSet(EnteredInErrorMixin, CreateScopedViewSet):
    read_serializer = s.DoseEventSerializer
    input_serializers = {
        "create": s.DoseEventCreateSerializer,
        "outside_clinic_report": s.OutsideClinicReportSerializer,
    }
    filterset_class = filters.DoseEventFilter
    ordering_fields = ("occurred_at", "id")
    ordering = ("-occurred_at", "-id")

    def base_queryset(self) -> QuerySet[DoseEvent]:
        return DoseEvent.objects.all()

    def reporter(self) -> str:
        return DoseEvent.Reporter.CLINICIAN if self.actor.is_clinician else DoseEvent.Reporter.PATIENT

    def perform_create(self, data: dict[str, Any]) -> DoseEvent:  # type: ignore[override]
        drug = data["prescription"].drug
        if drug.in_clinic_only and not self.actor.is_clinician:
            # The service refuses this too (without a field, and in the portal's terms); here the
            # refusal names the field sent and this API's own way to report the dose.
            raise serializers.ValidationError(
                {
                    "prescription": [
                        f"{drug} is given only at the clinic, so it cannot be logged as a dose. If you took it "
                        "outside the clinic, report it with POST /api/dose-events/outside-clinic-report/ "
                        "(this prescription and when you took it); your care team will be told."
                    ]
                }
            )
        return call_service(dose_service.record_dose, **data, reporter=self.reporter(), recorded_by=self.request.user)

    @extend_schema(responses={201: s.DoseEventSerializer}, summary="Report a clinic-only drug taken outside")
    @action(detail=False, methods=["post"], url_path="outside-clinic-report")
    def outside_clinic_report(self, request: Request) -> Response:
        data = self.valid_input(request)
        event = call_service(
            dose_service.report_outside_clinic, **data, reporter=self.reporter(), recorded_by=request.user
        )
        return self.respond(event, status.HTTP_201_CREATED)


@described
@clinical_record_schema(s.AssessmentSerializer, s.AssessmentCreateSerializer)
class AssessmentViewSet(EnteredInErrorMixin, CreateScopedViewSet):
    read_serializer = s.AssessmentSerializer
    input_serializers = {"create": s.AssessmentCreateSerializer}
    filterset_class = filters.AssessmentFilter
    ordering_fields = ("completed_at", "id")
    ordering = ("-completed_at", "-id")

    def base_queryset(self) -> QuerySet[Assessment]:
        return Assessment.objects.all()

    def perform_create(self, data: dict[str, Any]) -> Assessment:  # type: ignore[override]
        # A patient's own answers are patient-reported whatever they send.
        source = data.pop("source", Assessment.Source.CLINICIAN)
        if self.actor.is_patient:
            source = Assessment.Source.PATIENT
        submitted = call_service(
            assessment_service.submit_assessment, **data, source=source, recorded_by=self.request.user
        )
        return submitted.assessment


@described
@clinical_record_schema(s.SideEffectReportSerializer, s.SideEffectCreateSerializer)
class SideEffectReportViewSet(EnteredInErrorMixin, CreateScopedViewSet):
    read_serializer = s.SideEffectReportSerializer
    input_serializers = {"create": s.SideEffectCreateSerializer}
    filterset_class = filters.SideEffectReportFilter
    ordering_fields = ("reported_at", "id")
    ordering = ("-reported_at", "-id")

    def base_queryset(self) -> QuerySet[SideEffectReport]:
        return SideEffectReport.objects.all()

    def perform_create(self, data: dict[str, Any]) -> SideEffectReport:  # type: ignore[override]
        prescription = data.pop("prescription", None)
        effect = assessment_service.EffectReport(
            effect=data["effect"],
            severity=data["severity"],
            onset_date=data.get("onset_date"),
            description=data["description"],
            prescription_id=prescription.pk if prescription else None,
        )
        (report,) = call_service(
            assessment_service.report_side_effects,
            patient=data["patient"],
            effects=[effect],
            recorded_by=self.request.user,
        )
        return report


def session_changes(session: InClinicSession, data: dict[str, Any]) -> dict[str, Any]:
    """The fields sent that differ from the record, as the admin passes only a form's changed fields.

    A reason alone would be dropped by ``update_session``: it goes with the decision sent or on
    record, and without either it is refused on ``bp_decision``.
    """
    values = {name: value for name, value in data.items() if getattr(session, name) != value}
    if "bp_decision_reason" in values and "bp_decision" not in values:
        decision = data.get("bp_decision") or session.bp_decision
        if not decision:
            raise serializers.ValidationError(
                {"bp_decision": ["Choose whether to withhold the dose or proceed; the reason goes with the decision."]}
            )
        values["bp_decision"] = decision
    return values


SESSION_WRITE = (IsAuthenticated, ClinicianOnly)


@described
@clinical_record_schema(s.InClinicSessionSerializer)
class InClinicSessionViewSet(EnteredInErrorMixin, ReadOnlyScopedViewSet):
    """Sessions as the admin records them, by the same services: start, record each step, sign off.

    Writes are for the clinic's staff only (a patient's token gets 403); a session of another
    clinic is 404, and a prescription, planned session or clinician of another clinic in the
    body is a 400 on that field, like a missing id. The acting clinician is the token's own
    clinic membership. Nothing is deleted: a wrong session is marked entered in error.
    """

    read_serializer = s.InClinicSessionSerializer
    input_serializers = {"create": s.SessionStartSerializer, "partial_update": s.SessionUpdateSerializer}
    action_permissions = {"create": SESSION_WRITE, "partial_update": SESSION_WRITE, "sign_off": SESSION_WRITE}
    filterset_class = filters.InClinicSessionFilter
    ordering_fields = ("created_at", "first_device_at", "id")
    ordering = ("-created_at", "-id")

    def base_queryset(self) -> QuerySet[InClinicSession]:
        return InClinicSession.objects.prefetch_related("addenda")

    def respond_result(self, result: session_service.SessionResult, code: int = status.HTTP_200_OK) -> Response:
        """The saved session, re-read with its addenda, and the warnings the step gave."""
        session = self.get_queryset().get(pk=result.session.pk)
        session.step_warnings = result.warnings
        return self.respond(session, code)

    @extend_schema(
        request=s.SessionStartSerializer,
        responses={201: s.InClinicSessionSerializer},
        summary="Start a session, from a planned session or a prescription, optionally with the pre-dose BP",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.valid_input(request)
        result = call_service(
            session_service.start_session,
            prescription=data["prescription"],
            planned_dose=data.get("planned_dose"),
            administered_by=data.get("administered_by") or self.actor.clinician,
            care_setting=data.get("care_setting"),
            bp_before_systolic=data.get("bp_before_systolic"),
            bp_before_diastolic=data.get("bp_before_diastolic"),
            bp_before_at=data.get("bp_before_at"),
        )
        return self.respond_result(result, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.SessionUpdateSerializer,
        responses=s.InClinicSessionSerializer,
        summary="Record the session's next steps (vitals, decision, dose, monitoring, discharge)",
        description="Fields are applied in clinical order with the admin's checks; a refusal names its field. "
        "A signed-off session changes only with addendum_reason (kept as an addendum).",
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        session = self.get_object()
        data = self.valid_input(request)
        reason = data.pop("addendum_reason", "")
        result = call_service(
            session_service.update_session,
            session=session,
            values=session_changes(session, data),
            by=self.actor.clinician,
            recorded_by=request.user,
            addendum_reason=reason,
        )
        return self.respond_result(result)

    @extend_schema(
        request=None,
        responses=s.InClinicSessionSerializer,
        summary="Sign the session off: only when every required field is in; then only addenda change it",
    )
    @action(detail=True, methods=["post"], url_path="sign-off")
    def sign_off(self, request: Request, pk: str | None = None) -> Response:
        signed = call_service(session_service.sign_off_session, session=self.get_object(), by=self.actor.clinician)
        return self.respond_result(session_service.SessionResult(signed))


@described
@clinical_record_schema(s.WeightMeasurementSerializer, s.WeightCreateSerializer)
class WeightMeasurementViewSet(EnteredInErrorMixin, ReadOnlyScopedViewSet):
    """Weights: clinicians record them; a patient reads their own. The latest is the current weight."""

    read_serializer = s.WeightMeasurementSerializer
    input_serializers = {"create": s.WeightCreateSerializer}
    action_permissions = {"create": (IsAuthenticated, ClinicianOnly)}
    filterset_class = filters.WeightMeasurementFilter
    ordering_fields = ("measured_at", "id")
    ordering = ("-measured_at", "-id")

    def base_queryset(self) -> QuerySet[WeightMeasurement]:
        return WeightMeasurement.objects.all()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.valid_input(request)
        measurement = call_service(measurement_service.record_weight, **data, recorded_by=request.user)
        return self.respond(measurement, status.HTTP_201_CREATED)


@described
@clinical_record_schema(s.ClinicalMeasurementSerializer, s.ClinicalMeasurementCreateSerializer)
class ClinicalMeasurementViewSet(EnteredInErrorMixin, ReadOnlyScopedViewSet):
    """Height, BP, pulse and blood tests: clinicians record them; a patient reads their own."""

    read_serializer = s.ClinicalMeasurementSerializer
    input_serializers = {"create": s.ClinicalMeasurementCreateSerializer}
    action_permissions = {"create": (IsAuthenticated, ClinicianOnly)}
    filterset_class = filters.ClinicalMeasurementFilter
    ordering_fields = ("measured_at", "id")
    ordering = ("-measured_at", "-id")

    def base_queryset(self) -> QuerySet[ClinicalMeasurement]:
        return ClinicalMeasurement.objects.all()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.valid_input(request)
        measurement = call_service(measurement_service.record_measurement, **data, recorded_by=request.user)
        return self.respond(measurement, status.HTTP_201_CREATED)


# --- Flags: the clinicians' worklist -----------------------------------------------------------


@described
class FlagViewSet(ReadOnlyScopedViewSet):
    read_serializer = s.FlagSerializer
    input_serializers = {"resolve": s.ResolveFlagSerializer}
    permission_classes = (IsAuthenticated, ClinicianOnly)
    filterset_class = filters.FlagFilter
    ordering_fields = ("severity", "raised_at", "id")
    ordering = ("-severity", "raised_at", "id")

    def base_queryset(self) -> QuerySet[Flag]:
        return Flag.objects.prefetch_related("facts")  # one query for the page's facts, not one a flag

    @extend_schema(request=None, responses=s.FlagSerializer, summary="Acknowledge: a clinician is on it")
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        return self.respond(call_service(flag_service.acknowledge_flag, flag=self.get_object(), by=request.user))

    @extend_schema(responses=s.FlagSerializer, summary="Resolve, with a note (required when urgent or critical)")
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        flag = self.get_object()
        data = self.valid_input(request)
        return self.respond(call_service(flag_service.resolve_flag, flag=flag, by=request.user, note=data["note"]))
