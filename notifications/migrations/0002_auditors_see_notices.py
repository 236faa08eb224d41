"""Auditors may view the outbox (notices and their attempts) and the webhook endpoints."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = ["view_notice", "view_noticeattempt", "view_webhookendpoint"]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the group needs them now.
    app_config = apps.get_app_config("notifications")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    auditors, _ = Group.objects.get_or_create(name="Auditors")
    auditors.permissions.add(
        *Permission.objects.filter(content_type__app_label="notifications", codename__in=VIEW)
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for auditors in Group.objects.filter(name="Auditors"):
        auditors.permissions.remove(
            *Permission.objects.filter(content_type__app_label="notifications", codename__in=VIEW)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("jobs", "0002_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
