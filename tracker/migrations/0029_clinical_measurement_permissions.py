"""Give the clinician groups their permissions on clinical measurements (height, BP, pulse, blood tests).

Prescribers and nurses record them (add) and mark wrong ones entered in error (change);
clinic managers view them. A frozen copy, as in 0003 and 0007: migrations do not import app code.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Prescribers": ["view_clinicalmeasurement", "add_clinicalmeasurement", "change_clinicalmeasurement"],
    "Nurses": ["view_clinicalmeasurement", "add_clinicalmeasurement", "change_clinicalmeasurement"],
    "Clinic managers": ["view_clinicalmeasurement"],
}


def grant(apps, schema_editor):
    db_alias = schema_editor.connection.alias
    # Permissions are normally made after all migrations (post_migrate); make them now.
    app_config = apps.get_app_config("tracker")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=db_alias)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.using(db_alias).get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.using(db_alias).filter(content_type__app_label="tracker", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    db_alias = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.using(db_alias).filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.using(db_alias).filter(
                content_type__app_label="tracker", codename__endswith="_clinicalmeasurement"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0028_clinical_measurements"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
