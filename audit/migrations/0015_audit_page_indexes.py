"""The audit page's order (newest first, the id after the moment) as one index, which its
keyset pages seek in (lib/keyset.py); the event and username indexes end with the id too, so
that a filtered page is read in order from its index with no sort of equal moments. Each new
index is built before the one it replaces is dropped.

created_at keeps its own index: dropping it (db_index=False) would make SQLite rebuild the
table, and the rebuild would lose the append-only trigger of migration 0002.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0014_job_and_sign_in_events"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["-created_at", "-id"], name="audit_created_id_idx"),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                fields=["event", "-created_at", "-id"], name="audit_event_created_id_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                fields=["actor_username", "-created_at", "-id"], name="audit_actor_created_id_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="auditentry", name="audit_event_created_idx"),
        migrations.RemoveIndex(model_name="auditentry", name="audit_actor_created_idx"),
    ]
