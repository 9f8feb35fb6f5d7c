"""Prescribers may also record doses and side effects, as nurses do (API and admin alike).

A frozen copy of the grant, as in 0003 and 0007: migrations do not import app code.
"""

from django.db import migrations

CODENAMES = ["add_doseevent", "change_doseevent", "add_sideeffectreport", "change_sideeffectreport"]


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    db_alias = schema_editor.connection.alias
    group, _ = Group.objects.using(db_alias).get_or_create(name="Prescribers")
    group.permissions.add(
        *Permission.objects.using(db_alias).filter(content_type__app_label="tracker", codename__in=CODENAMES)
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    db_alias = schema_editor.connection.alias
    for group in Group.objects.using(db_alias).filter(name="Prescribers"):
        group.permissions.remove(
            *Permission.objects.using(db_alias).filter(content_type__app_label="tracker", codename__in=CODENAMES)
        )


class Migration(migrations.Migration):
    dependencies = [("tracker", "0008_planneddose_drop_redundant_fk_indexes")]
    operations = [migrations.RunPython(grant, revoke)]
