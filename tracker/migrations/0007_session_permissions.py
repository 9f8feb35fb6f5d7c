"""Give the clinician groups their permissions on in-clinic sessions.

Prescribers and nurses record sessions (add, change); clinic managers view them. A frozen
copy, as in 0003: migrations do not import app code.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Prescribers": ["view_inclinicsession", "add_inclinicsession", "change_inclinicsession"],
    "Nurses": ["view_inclinicsession", "add_inclinicsession", "change_inclinicsession"],
    "Clinic managers": ["view_inclinicsession"],
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
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.using(schema_editor.connection.alias).filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="tracker", codename__endswith="_inclinicsession")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0006_in_clinic_sessions"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
