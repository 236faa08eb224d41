"""Two indexes that every submit wrote for each customer and no query reads: the in-flight
guard's index on cluster alone (its unique (cluster, cid) index serves those lookups), and, on
PostgreSQL, the pattern-matching copy of the customers' cid index (cids are looked up by
equality only). The cid index itself stays, under the same name, now declared in Meta.

Dropped by name rather than by Django's AlterField, which on SQLite copies the whole table to
change an index: the customers' table holds millions of rows."""

import django.db.models.deletion
from django.db import migrations, models

INFLIGHT_CLUSTER = "jobs_inflightcustomer_cluster_id_c538e1e8"
CID_PATTERNS = "jobs_jobcustomer_cid_2d13aa78_like"


def drop(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{INFLIGHT_CLUSTER}"')
    schema_editor.execute(f'DROP INDEX IF EXISTS "{CID_PATTERNS}"')


def create(apps, schema_editor):
    schema_editor.execute(
        f'CREATE INDEX "{INFLIGHT_CLUSTER}" ON "jobs_inflightcustomer" ("cluster_id")'
    )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX "{CID_PATTERNS}" ON "jobs_jobcustomer" ("cid" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0009_list_covering_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="inflightcustomer",
                    name="cluster",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="jobs.cluster",
                    ),
                ),
                migrations.AlterField(
                    model_name="jobcustomer",
                    name="cid",
                    field=models.CharField(max_length=64),
                ),
                migrations.AddIndex(
                    model_name="jobcustomer",
                    index=models.Index(fields=["cid"], name="jobs_jobcustomer_cid_2d13aa78"),
                ),
            ],
            database_operations=[migrations.RunPython(drop, create)],
        ),
    ]
