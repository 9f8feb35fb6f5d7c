# The access log (issue 14): one append-only row per read of a patient's record.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0029_clinical_measurement_permissions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PatientAccess",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name="opened at"),
                ),
                (
                    "surface",
                    models.CharField(
                        choices=[
                            ("admin_patient", "Patient page"),
                            ("timeline", "Course timeline"),
                            ("course_csv", "Course CSV export"),
                            ("fhir", "FHIR export"),
                            ("api_patient", "API patient record"),
                        ],
                        editable=False,
                        max_length=20,
                        verbose_name="where",
                    ),
                ),
                (
                    "address",
                    models.GenericIPAddressField(blank=True, editable=False, null=True, verbose_name="from address"),
                ),
                (
                    "clinic",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tracker.clinic",
                    ),
                ),
                (
                    "patient",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="accesses",
                        to="tracker.patient",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="opened by",
                    ),
                ),
            ],
            options={
                "verbose_name": "record access",
                "verbose_name_plural": "record accesses",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["patient", "-at"], name="tracker_access_patient_at"),
                    models.Index(fields=["clinic", "-at"], name="tracker_access_clinic_at"),
                    models.Index(fields=["user", "-at"], name="tracker_access_user_at"),
                ],
            },
        ),
    ]
