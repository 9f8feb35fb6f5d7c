# The worklist counts open flags per severity from this index alone (docs/benchmarks.md, section 5).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tracker', '0011_planneddose_pending_by_patient'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='flag',
            index=models.Index(condition=models.Q(('status', 'resolved'), _negated=True), fields=['patient', 'severity'], name='tracker_flag_open_by_patient'),
        ),
    ]
