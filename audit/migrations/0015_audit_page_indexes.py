"""The audit page's order (newest first, the id after the moment) as one index, which its
keyset pages seek in (lib/keyset.py).

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
    ]
