"""API routes under /api/ (the schema and docs pages are wired in config/urls.py)."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from tracker.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("patients", views.PatientViewSet, basename="patient")
router.register("drugs", views.DrugViewSet, basename="drug")
router.register("prescriptions", views.PrescriptionViewSet, basename="prescription")
router.register("schedules", views.DoseScheduleViewSet, basename="schedule")
router.register("planned-doses", views.PlannedDoseViewSet, basename="planned-dose")
router.register("dose-events", views.DoseEventViewSet, basename="dose-event")
router.register("assessments", views.AssessmentViewSet, basename="assessment")
router.register("side-effects", views.SideEffectReportViewSet, basename="side-effect")
router.register("in-clinic-sessions", views.InClinicSessionViewSet, basename="in-clinic-session")
router.register("weight-measurements", views.WeightMeasurementViewSet, basename="weight-measurement")
router.register("measurements", views.ClinicalMeasurementViewSet, basename="clinical-measurement")
router.register("flags", views.FlagViewSet, basename="flag")

urlpatterns = router.urls
