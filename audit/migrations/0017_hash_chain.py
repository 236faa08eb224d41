"""The audit trail becomes a hash chain (audit.chain): each entry gets its place (`seq`), the
hash of the entry before it and its own hash.

Entries already written are chained here, in the order they were written (their id), so that
the chain covers the whole history rather than starting at a genesis recorded today: the
append-only triggers (0002, 0006) are dropped for this one backfill, in the migration's
transaction, and created again at its end, the UPDATE trigger now also covering the chain's
columns (on PostgreSQL it compares the whole row; on SQLite it lists the columns). SQLite
rebuilds the table to make the columns NOT NULL, which drops triggers anyway.
"""

import importlib

from django.db import migrations, models

from audit.chain import GENESIS, canonical, entry_hash

_UPDATE = importlib.import_module("audit.migrations.0002_append_only_trigger")
_DELETE = importlib.import_module("audit.migrations.0006_append_only_delete")

# Every column but actor_id: tests/test_audit.py fails when a column added to AuditEntry is
# missing here (a new migration must then recreate the trigger).
SQLITE_COLUMNS = [*_UPDATE.SQLITE_COLUMNS, "seq", "prev_hash", "hash"]
SQLITE_UPDATE = _UPDATE.SQLITE_CREATE.replace(
    " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _UPDATE.SQLITE_COLUMNS),
    " AND ".join(f"NEW.{c} IS OLD.{c}" for c in SQLITE_COLUMNS),
)
CREATE = {
    "sqlite": [SQLITE_UPDATE, *_DELETE.CREATE["sqlite"]],
    "postgresql": [_UPDATE.POSTGRES_CREATE, *_DELETE.CREATE["postgresql"]],
}
DROP = {vendor: [_UPDATE.DROP[vendor], *_DELETE.DROP[vendor]] for vendor in CREATE}
OLD_CREATE = {
    "sqlite": [_UPDATE.SQLITE_CREATE, *_DELETE.CREATE["sqlite"]],
    "postgresql": CREATE["postgresql"],
}
BATCH = 5000


def create_triggers(apps, schema_editor):
    for statement in CREATE[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def create_old_triggers(apps, schema_editor):
    for statement in OLD_CREATE[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for statement in DROP[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def chain_existing(apps, schema_editor):
    """Chain the entries already written, in id order, BATCH at a time."""
    seq, prev_hash, last_id = 0, GENESIS, 0
    with schema_editor.connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT id, created_at, actor_username, event, job_id, ip_address, details "
                "FROM audit_auditentry WHERE id > %s ORDER BY id LIMIT %s",
                [last_id, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            updates = []
            for pk, created_at, username, event, job_id, ip_address, details in rows:
                seq += 1
                content = canonical(
                    seq=seq,
                    created_at=created_at,
                    actor_username=username,
                    event=event,
                    job_id=job_id,
                    ip_address=ip_address,
                    details=details,
                )
                updates.append((seq, prev_hash, (prev_hash := entry_hash(prev_hash, content)), pk))
            cursor.executemany(
                "UPDATE audit_auditentry SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
                updates,
            )
            last_id = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("audit", "0016_email_change_events")]

    operations = [
        migrations.RunPython(drop_triggers, create_old_triggers, elidable=False),
        migrations.AddField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(null=True, editable=False),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(unique=True, editable=False),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(max_length=64, editable=False),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(max_length=64, editable=False),
        ),
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
        migrations.CreateModel(
            name="ChainCheck",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("due_at", models.DateTimeField(blank=True, null=True)),
                ("checked_at", models.DateTimeField(blank=True, null=True)),
                ("head_seq", models.BigIntegerField(default=0)),
                ("head_hash", models.CharField(blank=True, max_length=64)),
                ("reported", models.CharField(blank=True, max_length=300)),
            ],
        ),
    ]
