"""The database itself refuses an UPDATE of an audit entry.

Model methods guard the ORM paths; this trigger guards the rest (bulk SQL, raw SQL, other
clients). The one update it allows is the one Django makes when a user is deleted: actor_id
set to NULL with every other column unchanged (the entry keeps actor_username).
DELETE is left to the ORM guard so that test databases can still be flushed.
"""

from django.db import migrations

TRIGGER = "audit_auditentry_append_only"

# Every column but actor_id. tests/test_audit.py fails when a column added to AuditEntry is
# missing here (a new migration must then recreate the trigger).
SQLITE_COLUMNS = ["id", "created_at", "actor_username", "event", "job_id", "ip_address", "details"]

SQLITE_CREATE = f"""
CREATE TRIGGER {TRIGGER}
BEFORE UPDATE ON audit_auditentry
FOR EACH ROW
WHEN NOT (
    OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
    AND {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in SQLITE_COLUMNS)}
)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
"""

POSTGRES_CREATE = f"""
CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND to_jsonb(NEW) - 'actor_id' = to_jsonb(OLD) - 'actor_id' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER {TRIGGER}
BEFORE UPDATE ON audit_auditentry
FOR EACH ROW EXECUTE FUNCTION {TRIGGER}();
"""

DROP = {
    "sqlite": f"DROP TRIGGER IF EXISTS {TRIGGER};",
    "postgresql": f"DROP TRIGGER IF EXISTS {TRIGGER} ON audit_auditentry; "
    f"DROP FUNCTION IF EXISTS {TRIGGER}();",
}
CREATE = {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}


def create_trigger(apps, schema_editor):
    schema_editor.execute(CREATE[schema_editor.connection.vendor])


def drop_trigger(apps, schema_editor):
    schema_editor.execute(DROP[schema_editor.connection.vendor])


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_trigger, drop_trigger, elidable=False)]
