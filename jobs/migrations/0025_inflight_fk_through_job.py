"""The in-flight guard's two foreign keys (to its cluster, to its job) become one over both
columns: (cluster_id, job_id) references the job's (cluster_id, id).

Still no guard row outlives its job, and now none can name a cluster other than its job's; the
job's own foreign key keeps the cluster. At the commit of a submit the database checks each
row once instead of twice: 100,000 checks fewer for 100,000 customers, about 0.35 s on
PostgreSQL. Django makes no foreign key over two columns: the model's fields say
db_constraint=False and this migration makes it, on PostgreSQL with ALTER TABLE and on SQLite
(which adds no constraint to a table) by making the table afresh as Django itself does.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "jobs_inflightcustomer"
FOREIGN_KEY = (
    'CONSTRAINT "inflightcustomer_job_fk" FOREIGN KEY ("cluster_id", "job_id") '
    'REFERENCES "jobs_job" ("cluster_id", "id") DEFERRABLE INITIALLY DEFERRED'
)


def add_foreign_key(apps, schema_editor):
    execute = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        execute(f'ALTER TABLE "{TABLE}" ADD {FOREIGN_KEY}')
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [TABLE])
        (create,) = cursor.fetchone()
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
            "AND sql IS NOT NULL",
            [TABLE],
        )
        indexes = [sql for (sql,) in cursor.fetchall()]
    create = create.replace(f'"{TABLE}"', f'"new__{TABLE}"', 1)
    execute(f"{create[: create.rindex(')')]}, {FOREIGN_KEY})")
    execute('INSERT INTO "new__jobs_inflightcustomer" SELECT * FROM "jobs_inflightcustomer"')
    execute('DROP TABLE "jobs_inflightcustomer"')
    execute('ALTER TABLE "new__jobs_inflightcustomer" RENAME TO "jobs_inflightcustomer"')
    for sql in indexes:
        execute(sql)


def drop_foreign_key(apps, schema_editor):
    # On SQLite, the fields' AlterField undone next makes the table afresh without it.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'ALTER TABLE "{TABLE}" DROP CONSTRAINT "inflightcustomer_job_fk"')


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0024_stats_index_by_action"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="job",
            constraint=models.UniqueConstraint(
                fields=("cluster", "id"), name="job_unique_cluster_id"
            ),
        ),
        migrations.AlterField(
            model_name="inflightcustomer",
            name="cluster",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="jobs.cluster",
            ),
        ),
        migrations.AlterField(
            model_name="inflightcustomer",
            name="job",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="jobs.job",
            ),
        ),
        migrations.RunPython(add_foreign_key, drop_foreign_key, elidable=False),
    ]
