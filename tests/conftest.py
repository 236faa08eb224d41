from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from devtools.fake_cluster import FakeCluster
from tests.helpers import make_user
from tests.notify_servers import SmtpServer, WebhookReceiver

# The fake cluster answers a CID starting SLOW after this long; test clusters time out sooner.
SLOW_SECONDS = 4
CLUSTER_TIMEOUT = 2


@pytest.fixture(scope="session")
def fake_cluster():
    with FakeCluster(slow_seconds=SLOW_SECONDS) as server:
        yield server


@pytest.fixture
def operator(db):
    return make_user("op1", "Operators")


@pytest.fixture
def cluster(db, fake_cluster):
    return baker.make(
        "jobs.Cluster",
        name="eu1",
        base_url=fake_cluster.url,
        timeout_seconds=CLUSTER_TIMEOUT,
        is_active=True,
    )


@pytest.fixture(scope="session")
def smtp_server():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def mail(settings, smtp_server):
    """E-mail on, through the loopback SMTP server, its inbox empty."""
    smtp_server.clear()
    settings.TMS_MAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    return smtp_server


@pytest.fixture
def receiver():
    """A webhook receiver on loopback checking signatures with its secret."""
    with WebhookReceiver(secret="whsec-" + "r" * 26) as server:
        yield server


@pytest.fixture
def run_queued_tasks(db):
    """Run each queued task's function in-process, as a worker would after the submit
    committed. (Real db_worker processes run them in tests/test_worker.py and tests/e2e.)"""

    def run() -> None:
        for result in DBTaskResult.objects.ready().order_by("enqueued_at"):
            arguments = result.args_kwargs
            result.task.call(*arguments["args"], **arguments["kwargs"])

    return run


_AUDIT_GUARD = importlib.import_module("audit.migrations.0019_audit_purge")


@pytest.fixture(autouse=True, scope="session")
def flush_past_the_audit_guard():
    """The audit trail refuses DELETE and TRUNCATE in the database (migrations audit/0006, 0019).
    Tests that commit empty the database after themselves with a flush: only here, and only
    around that flush, are the triggers dropped and created again. Production has no such
    path."""
    operations = type(connection.ops)
    original = operations.sql_flush

    def sql_flush(self, style, tables, *args, **kwargs):
        statements = original(self, style, tables, *args, **kwargs)
        if "audit_auditentry" not in tables:
            return statements
        vendor = self.connection.vendor
        return [*_AUDIT_GUARD.DROP[vendor], *statements, *_AUDIT_GUARD.CREATE[vendor]]

    operations.sql_flush = sql_flush
    yield
    operations.sql_flush = original
