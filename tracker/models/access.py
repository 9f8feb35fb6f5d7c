"""Who opened which patient's record: one append-only row per read.

Information governance asks "who looked at this patient's record, and when?". Each read of a
record in the clinicians' workspace or the API writes one row (a single INSERT, no lookups:
``tracker.services.access.record_access``). Rows are never changed or deleted, not even by a
superuser in the admin: the model refuses ``save()`` of an existing row and any ``delete()``,
and the queryset refuses bulk ``update()`` and ``delete()``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccessLogChangeError(Exception):
    """Raised on any attempt to change or delete an access-log row."""

    def __init__(self) -> None:
        super().__init__("The access log is append-only: its rows are never changed or deleted.")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AccessLogChangeError

    def delete(self) -> Any:  # type: ignore[override]
        raise AccessLogChangeError


class PatientAccess(models.Model):
    """One read of one patient's record: who, when, which patient, where, from which address."""

    class Surface(models.TextChoices):
        PATIENT_PAGE = "admin_patient", "Patient page"
        TIMELINE = "timeline", "Course timeline"
        COURSE_CSV = "course_csv", "Course CSV export"
        FHIR = "fhir", "FHIR export"
        API_DETAIL = "api_patient", "API patient record"
        API_LIST = "api_list", "API patient list"

    at = models.DateTimeField(default=timezone.now, editable=False, verbose_name="opened at")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False, verbose_name="opened by"
    )
    patient = models.ForeignKey("tracker.Patient", on_delete=models.PROTECT, related_name="accesses", editable=False)
    # The patient's clinic, copied so a manager's clinic-wide list needs no join to patients.
    clinic = models.ForeignKey("tracker.Clinic", on_delete=models.PROTECT, related_name="+", editable=False)
    surface = models.CharField(max_length=20, choices=Surface.choices, editable=False, verbose_name="where")
    address = models.GenericIPAddressField(null=True, blank=True, editable=False, verbose_name="from address")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = "record access"
        verbose_name_plural = "record accesses"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["patient", "-at"], name="tracker_access_patient_at"),
            models.Index(fields=["clinic", "-at"], name="tracker_access_clinic_at"),
            models.Index(fields=["user", "-at"], name="tracker_access_user_at"),
        ]

    def __str__(self) -> str:
        who = f"patient {self.patient_id} by user {self.user_id}"
        return f"{self.get_surface_display()}: {who} at {self.at:%Y-%m-%d %H:%M} UTC"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AccessLogChangeError
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AccessLogChangeError
