"""Auth groups for the clinician roles, with their model permissions.

A frozen copy of the permission table (tracker.services.clinicians holds the live one):
migrations must not import app code. Permissions are normally created by a post_migrate
signal, i.e. after all migrations, so they are created here first.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_MODELS = (
    "clinic",
    "clinician",
    "patient",
    "drug",
    "prescription",
    "doseschedule",
    "planneddose",
    "doseevent",
    "assessment",
    "sideeffectreport",
    "flag",
)


def add_change(*models):
    return [f"{action}_{model}" for model in models for action in ("add", "change")]


GROUPS = {
    "Prescribers": add_change("prescription", "doseschedule", "assessment") + ["change_flag"],
    "Nurses": add_change("doseevent", "assessment", "sideeffectreport", "flag"),
    "Clinic managers": add_change("patient", "clinician", "drug"),
}


def create_groups(apps, schema_editor):
    db_alias = schema_editor.connection.alias
    # Historical app configs have no models_module, which makes create_permissions skip them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=db_alias)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        wanted = {f"view_{model}" for model in VIEW_MODELS} | set(codenames)
        group, _ = Group.objects.using(db_alias).get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.using(db_alias).filter(content_type__app_label="tracker", codename__in=wanted)
        )


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0002_seed_drug_catalogue"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
