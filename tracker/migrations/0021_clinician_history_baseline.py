"""A first history row for every existing clinician, so their next change shows the old values."""

from django.db import migrations
from django.utils import timezone


def add_baseline(apps, schema_editor):
    Clinician = apps.get_model("tracker", "Clinician")
    HistoricalClinician = apps.get_model("tracker", "HistoricalClinician")
    now = timezone.now()
    HistoricalClinician.objects.bulk_create(
        [
            HistoricalClinician(
                id=c.id,
                user_id=c.user_id,
                clinic_id=c.clinic_id,
                role=c.role,
                title=c.title,
                is_active=c.is_active,
                history_date=now,
                history_type="+",
                history_change_reason="State when the clinician history began",
            )
            for c in Clinician.objects.exclude(id__in=HistoricalClinician.objects.values("id")).iterator()
        ],
        batch_size=500,
    )


def remove_baseline(apps, schema_editor):
    HistoricalClinician = apps.get_model("tracker", "HistoricalClinician")
    HistoricalClinician.objects.filter(history_change_reason="State when the clinician history began").delete()


class Migration(migrations.Migration):
    dependencies = [("tracker", "0020_clinician_history")]

    operations = [migrations.RunPython(add_baseline, remove_baseline)]
