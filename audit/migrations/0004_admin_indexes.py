"""Indexes for the admin's audit log: the event filter and the search by username.

Both go on with created_at, the list's order, so that a page reads only its own rows. Created in
the database only, as AuditEntry.Meta does not declare them (see jobs/0004_admin_indexes).
"""

from django.db import migrations, models

INDEXES = [
    models.Index(fields=["event", "-created_at"], name="audit_event_created_idx"),
    models.Index(fields=["actor_username", "-created_at"], name="audit_actor_created_idx"),
]


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_late_result_event")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AddIndex(model_name="auditentry", index=index) for index in INDEXES
            ]
        )
    ]
