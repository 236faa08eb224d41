"""The database itself refuses to delete audit entries, raw SQL included.

Migration 0002 refuses UPDATE; these triggers refuse DELETE (and, on PostgreSQL, TRUNCATE),
with no condition that a session could meet to get past them. The test suite empties its
database between tests by dropping them around its flush only (tests/conftest.py).
"""

from django.db import migrations

DELETE_TRIGGER = "audit_auditentry_no_delete"
TRUNCATE_TRIGGER = "audit_auditentry_no_truncate"
FUNCTION = "audit_auditentry_refuse_removal"

SQLITE_CREATE = [
    f"""
CREATE TRIGGER {DELETE_TRIGGER}
BEFORE DELETE ON audit_auditentry
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
"""
]
POSTGRES_CREATE = [
    f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    f"CREATE TRIGGER {DELETE_TRIGGER} BEFORE DELETE ON audit_auditentry "
    f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}();",
    f"CREATE TRIGGER {TRUNCATE_TRIGGER} BEFORE TRUNCATE ON audit_auditentry "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();",
]
CREATE = {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}
DROP = {
    "sqlite": [f"DROP TRIGGER IF EXISTS {DELETE_TRIGGER};"],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {DELETE_TRIGGER} ON audit_auditentry;",
        f"DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON audit_auditentry;",
        f"DROP FUNCTION IF EXISTS {FUNCTION}();",
    ],
}


def create_triggers(apps, schema_editor):
    for statement in CREATE[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for statement in DROP[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_cluster_and_lockout_events")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
