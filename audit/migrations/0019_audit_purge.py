"""Old audit entries can be purged into an archive (audit.retention), and by nothing else.

The DELETE guard (migration 0006) is made again with one exception: a transaction that sees a
row in audit_purgepermit may delete. The purge inserts that row inside each batch's
transaction and removes it before the commit, so no other transaction ever sees it: on
PostgreSQL an uncommitted row is visible to its own transaction only, and SQLite has one
writer at a time. TRUNCATE (PostgreSQL) and UPDATE (migrations 0002, 0017) stay refused
always. The trigger and function keep their names, so the test suite's flush (tests/conftest.py)
drops and makes them with DROP and CREATE below.
"""

import importlib

import django.utils.timezone
from django.db import migrations, models

_DELETE = importlib.import_module("audit.migrations.0006_append_only_delete")

SQLITE_CREATE = [
    """
CREATE TRIGGER audit_auditentry_no_delete
BEFORE DELETE ON audit_auditentry
WHEN NOT EXISTS (SELECT 1 FROM audit_purgepermit)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
"""
]
POSTGRES_CREATE = [
    """
CREATE FUNCTION audit_auditentry_refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_purgepermit) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    *_DELETE.CREATE["postgresql"][1:],
]
CREATE = {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}
DROP = _DELETE.DROP


def create_triggers(apps, schema_editor):
    for statement in CREATE[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for statement in DROP[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def create_old_triggers(apps, schema_editor):
    for statement in _DELETE.CREATE[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0018_retention_events"),
    ]

    operations = [
        migrations.RunPython(drop_triggers, create_old_triggers, elidable=False),
        migrations.CreateModel(
            name="ChainAnchor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("purged_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("first_seq", models.BigIntegerField()),
                ("last_seq", models.BigIntegerField(unique=True)),
                ("last_hash", models.CharField(max_length=64)),
                ("archive", models.CharField(max_length=500)),
                ("archive_sha256", models.CharField(max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="PurgePermit",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="event",
            field=models.CharField(
                choices=[
                    ("set_action.requested", "Set Action requested"),
                    ("job.succeeded", "Job succeeded"),
                    ("job.failed", "Job failed"),
                    ("job.unknown", "Job outcome unknown"),
                    ("job.cancelled", "Job cancelled before it was sent"),
                    ("job.retried", "Job retried"),
                    ("job.late_result", "Result arrived after the job was reaped"),
                    ("job.deduplicated", "Duplicate job removed"),
                    ("job.looked_at", "Unknown outcome looked at"),
                    ("legacy.imported", "Legacy data imported"),
                    ("cluster.created", "Cluster created"),
                    ("cluster.changed", "Cluster changed"),
                    ("cluster.deactivated", "Cluster deactivated"),
                    ("cluster.deleted", "Cluster deleted"),
                    ("auth.login", "Signed in"),
                    ("auth.login_failed", "Sign-in failed"),
                    ("auth.locked_out", "Locked out after failed sign-ins"),
                    ("auth.logout", "Signed out"),
                    ("auth.signin_refused", "Sign-in refused"),
                    ("auth.user_created", "User created at their first company sign-in"),
                    ("auth.groups_changed", "Groups changed by the identity provider"),
                    ("auth.renewal_refused", "Identity provider refused a renewal"),
                    ("auth.break_glass", "Break-glass password sign-in"),
                    ("user.deactivated", "User deactivated"),
                    ("api_token.created", "API token created"),
                    ("api_token.revoked", "API token revoked"),
                    ("api_token.removed", "Ended API tokens removed"),
                    ("notifications.changed", "Notification settings changed"),
                    ("webhook.created", "Webhook endpoint created"),
                    ("webhook.changed", "Webhook endpoint changed"),
                    ("webhook.deleted", "Webhook endpoint deleted"),
                    ("notices.resent", "Notices queued to be delivered again"),
                    ("webhook.tested", "Test message sent to a webhook endpoint"),
                    ("email.change_requested", "E-mail address change requested"),
                    ("email.changed", "E-mail address changed (confirmed)"),
                    ("run_grant.created", "Run grant created"),
                    ("run_grant.deleted", "Run grant deleted"),
                    ("approval_rule.created", "Approval rule created"),
                    ("approval_rule.deleted", "Approval rule deleted"),
                    ("approval.requested", "Approval requested"),
                    ("approval.approved", "Approved"),
                    ("approval.denied", "Denied"),
                    ("approval.expired", "Approval expired"),
                    ("approval.withdrawn", "Approval request withdrawn"),
                    ("credential.set", "Cluster credential set"),
                    ("credential.changed", "Cluster credential changed"),
                    ("credential.removed", "Cluster credential removed"),
                    ("credential.used", "Cluster credential used"),
                    ("token_key.rotated", "Stored secrets re-encrypted with a new key"),
                    ("freeze.created", "Change freeze created"),
                    ("freeze.deleted", "Change freeze removed"),
                    ("freeze.overridden", "Change freeze overridden"),
                    ("window.created", "Maintenance window created"),
                    ("window.deleted", "Maintenance window removed"),
                    ("job.held", "Job held by a change freeze or maintenance window"),
                    ("job.released", "Job released by a change freeze or maintenance window"),
                    ("saved_set_action.created", "Saved Set Action created"),
                    ("saved_set_action.changed", "Saved Set Action changed"),
                    ("saved_set_action.deleted", "Saved Set Action deleted"),
                    ("schedule.created", "Schedule created"),
                    ("schedule.paused", "Schedule paused"),
                    ("schedule.resumed", "Schedule resumed"),
                    ("schedule.deleted", "Schedule deleted"),
                    ("schedule.fired", "Scheduled run submitted"),
                    ("schedule.skipped", "Scheduled run skipped"),
                    ("schedule.queued", "Scheduled run queued behind the previous one"),
                    ("schedule.failed", "Scheduled run failed"),
                    ("schedule.approved", "Schedule version approved"),
                    ("jobs.purged", "Ended jobs archived and purged"),
                    ("jobs.restored", "Jobs restored"),
                    ("audit.purged", "Old audit entries archived and purged"),
                ],
                max_length=64,
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
