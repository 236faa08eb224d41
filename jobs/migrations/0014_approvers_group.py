"""The Approvers group: the group approval rules name unless an admin makes others. Membership
of a rule's group is what lets a user approve its requests; the group needs no permission."""

from django.db import migrations

NAME = "Approvers"


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=NAME)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0013_approvals")]

    operations = [migrations.RunPython(create_group, remove_group)]
