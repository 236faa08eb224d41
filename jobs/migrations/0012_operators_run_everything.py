"""The Operators group gets a run grant for any action on any cluster, so that run grants
change nothing until an admin narrows them.

No audit entry: the tests' serialized rollback saves every row it restores again, an UPDATE the
audit trail refuses; the migration itself, in the django_migrations table, records it."""

from django.db import migrations

GROUP = "Operators"


def grant_operators(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group is None:
        return
    RunGrant = apps.get_model("jobs", "RunGrant")
    RunGrant.objects.get_or_create(group=group, user=None, cluster=None, action=None)


def ungrant_operators(apps, schema_editor):
    RunGrant = apps.get_model("jobs", "RunGrant")
    RunGrant.objects.filter(group__name=GROUP, user=None, cluster=None, action=None).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0011_run_grants"),
    ]

    operations = [migrations.RunPython(grant_operators, ungrant_operators)]
