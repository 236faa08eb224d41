"""The schema comes from migrations, and SQLite is set up for concurrent writers."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from model_bakery import baker

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Job, JobCustomer
from tests.helpers import THREADS, run_concurrently

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite connection settings; PostgreSQL has none"
)


def tables() -> set[str]:
    return set(connection.introspection.table_names())


@pytest.mark.django_db
def test_migrations_created_every_table_and_none_is_pending():
    assert {"jobs_cluster", "jobs_job", "jobs_jobcustomer", "audit_auditentry"} <= tables()
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migrations_unapply_to_empty_and_apply_again():
    call_command("migrate", "audit", "zero", verbosity=0)
    call_command("migrate", "jobs", "zero", verbosity=0)
    assert not {"jobs_job", "jobs_jobcustomer", "audit_auditentry"} & tables()
    call_command("migrate", verbosity=0)
    assert {"jobs_job", "jobs_jobcustomer", "audit_auditentry"} <= tables()
    # The trigger came back with its table.
    entry = audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor_username="x")
    with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET event = 'y' WHERE id = %s", [entry.pk])


@sqlite_only
@pytest.mark.django_db
def test_sqlite_uses_wal_normal_sync_and_a_long_busy_timeout():
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] >= 20_000
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


WRITES_PER_THREAD = 25


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_all_succeed(operator):
    """Eight threads, each reading then writing in its own transactions, all at once.

    A deferred SQLite transaction that reads and then writes fails at once with "database is
    locked" when another writer holds the lock; IMMEDIATE transactions wait for it instead.
    """

    def writer(n: int) -> None:
        for i in range(WRITES_PER_THREAD):
            with transaction.atomic():
                Job.objects.filter(user=operator).count()
                job = baker.make(Job, user=operator, action=1, cluster_url="http://127.0.0.1:9100")
                JobCustomer.objects.create(job=job, cid=f"T{n}-{i}")
                audit_record(event=AuditEntry.Event.SET_ACTION_REQUESTED, job_id=job.id)

    _, errors = run_concurrently(writer)
    assert errors == []
    assert Job.objects.count() == THREADS * WRITES_PER_THREAD
    assert JobCustomer.objects.count() == THREADS * WRITES_PER_THREAD
    assert AuditEntry.objects.filter(event="set_action.requested").count() == (
        THREADS * WRITES_PER_THREAD
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_jobs_recorded_before_they_kept_their_endpoint_take_their_clusters(operator):
    executor = MigrationExecutor(connection)
    executor.migrate([("jobs", "0004_list_indexes")])
    old = executor.loader.project_state([("jobs", "0004_list_indexes")]).apps
    cluster = old.get_model("jobs", "Cluster").objects.create(
        name="eu1", base_url="https://tms.example", action_path="/v2/set", timeout_seconds=45
    )
    job = old.get_model("jobs", "Job").objects.create(
        user_id=operator.pk, action=1, cluster=cluster, cluster_url=cluster.base_url
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    migrated = Job.objects.get(pk=job.pk)
    assert (migrated.action_path, migrated.timeout_seconds, migrated.verify_tls) == (
        "/v2/set",
        45,
        True,
    )
