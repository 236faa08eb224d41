"""The details field's encoder writes canonical JSON (audit.chain.CanonicalJSONEncoder). Only
the model's state changes: the encoder is not in the schema, and Django would otherwise rebuild
the table on SQLite (dropping its append-only triggers). Entries written before keep their
text; the walk checks those the long way."""

from django.db import migrations, models

import audit.chain


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0019_audit_purge"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="details",
                    field=models.JSONField(
                        blank=True, default=dict, encoder=audit.chain.CanonicalJSONEncoder
                    ),
                ),
            ],
        ),
    ]
