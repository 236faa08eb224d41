"""The database itself refuses a decision on an approval request by the request's submitter.

The submitter is read from the request row, not from anything the decision row says, so no
insert or update of a decision (the ORM, raw SQL, another client) can record one; and the
request's submitter can never be changed afterwards to make an existing decision the
submitter's own.
"""

from django.db import migrations

DECISION = "jobs_approvaldecision_not_submitter"
SUBMITTER = "jobs_approvalrequest_submitter_fixed"

SQLITE_CREATE = [
    """
CREATE TRIGGER jobs_approvaldecision_not_submitter_insert
BEFORE INSERT ON jobs_approvaldecision
FOR EACH ROW
WHEN NEW.decider_id IN (
    SELECT submitter_id FROM jobs_approvalrequest WHERE id = NEW.request_id
)
BEGIN
    SELECT RAISE(ABORT, 'the submitter of an approval request cannot decide it');
END;
""",
    """
CREATE TRIGGER jobs_approvaldecision_not_submitter_update
BEFORE UPDATE OF decider_id, request_id ON jobs_approvaldecision
FOR EACH ROW
WHEN NEW.decider_id IN (
    SELECT submitter_id FROM jobs_approvalrequest WHERE id = NEW.request_id
)
BEGIN
    SELECT RAISE(ABORT, 'the submitter of an approval request cannot decide it');
END;
""",
    """
CREATE TRIGGER jobs_approvalrequest_submitter_fixed
BEFORE UPDATE OF submitter_id ON jobs_approvalrequest
FOR EACH ROW
WHEN NEW.submitter_id IS NOT OLD.submitter_id
BEGIN
    SELECT RAISE(ABORT, 'an approval request''s submitter cannot change');
END;
""",
]

POSTGRES_CREATE = [
    """
CREATE FUNCTION jobs_approvaldecision_not_submitter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM jobs_approvalrequest
        WHERE id = NEW.request_id AND submitter_id = NEW.decider_id
    ) THEN
        RAISE EXCEPTION 'the submitter of an approval request cannot decide it' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
""",
    """
CREATE TRIGGER jobs_approvaldecision_not_submitter
BEFORE INSERT OR UPDATE OF decider_id, request_id ON jobs_approvaldecision
FOR EACH ROW EXECUTE FUNCTION jobs_approvaldecision_not_submitter();
""",
    """
CREATE FUNCTION jobs_approvalrequest_submitter_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.submitter_id IS DISTINCT FROM OLD.submitter_id THEN
        RAISE EXCEPTION 'an approval request''s submitter cannot change' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
""",
    """
CREATE TRIGGER jobs_approvalrequest_submitter_fixed
BEFORE UPDATE OF submitter_id ON jobs_approvalrequest
FOR EACH ROW EXECUTE FUNCTION jobs_approvalrequest_submitter_fixed();
""",
]

DROP = {
    "sqlite": [
        f"DROP TRIGGER IF EXISTS {DECISION}_insert;",
        f"DROP TRIGGER IF EXISTS {DECISION}_update;",
        f"DROP TRIGGER IF EXISTS {SUBMITTER};",
    ],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {DECISION} ON jobs_approvaldecision;",
        f"DROP FUNCTION IF EXISTS {DECISION}();",
        f"DROP TRIGGER IF EXISTS {SUBMITTER} ON jobs_approvalrequest;",
        f"DROP FUNCTION IF EXISTS {SUBMITTER}();",
    ],
}
CREATE = {"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}


def create_triggers(apps, schema_editor):
    for statement in CREATE[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for statement in DROP[schema_editor.connection.vendor]:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0014_approvers_group")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
