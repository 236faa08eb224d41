"""Indexes for the admin's job lists: each filter walks an index in the list's order.

The lists show the newest jobs first. An index that starts with the filtered column and goes on
with created_at lets the database read just the rows of one page, where a single-column index
would make it fetch and sort every match (hundreds of thousands on a large table).

The admin orders by (created_at, id), id breaking ties so that pages never overlap. For the
Failed jobs list (status IN FAILED, UNKNOWN) SQLite then needs the id in the index: with it,
SQLite reads only the first rows of each status and sorts those; without it, it sorts every failed
job. It makes job_status_created_idx (status, created_at) redundant.

The indexes are created in the database only: Job.Meta does not declare them, since the models
file is shared. To declare them there, copy the four indexes into Job.Meta.indexes and turn
this SeparateDatabaseAndState into plain AddIndex operations.
"""

from django.db import migrations, models

INDEXES = [
    models.Index(fields=["action", "-created_at"], name="job_action_created_idx"),
    models.Index(fields=["cluster", "-created_at"], name="job_cluster_created_idx"),
    models.Index(fields=["http_status", "-created_at"], name="job_http_status_created_idx"),
    models.Index(fields=["status", "-created_at", "-id"], name="job_status_created_id_idx"),
]


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_engine_fields")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AddIndex(model_name="job", index=index) for index in INDEXES
            ]
        )
    ]
