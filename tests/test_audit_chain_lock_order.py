"""The audit chain's lock is held to the commit (audit.chain), so it must be the last lock a
transaction takes: a job's end that took it before waking a waiting job would deadlock with a
transaction that holds that waiting job (cancelling it) and then writes its own audit entry.
PostgreSQL only: on SQLite every transaction takes the one write lock first, and never waits
for a second."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from model_bakery import baker

from audit.services import audit_record
from audit.verify import verify_chain
from devtools.fake_cluster import FakeCluster
from jobs.models import InFlightCall, Job
from jobs.services import job_run, job_submit
from lib.outage import outage_ended
from tests.db_locks import someone_waits_for_a_lock
from tests.helpers import TOKEN, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite transactions never wait for a lock"
    ),
]

ANSWER_SECONDS = 1.0


def test_a_job_end_waking_a_job_another_transaction_holds_waits_for_it_without_deadlock(
    operator,
):
    with FakeCluster(answer_seconds=ANSWER_SECONDS) as server:
        cluster = baker.make(
            "jobs.Cluster", name="one-slot", base_url=server.url, max_concurrent_calls=1
        )
        [first] = job_submit(user=operator, action=1, cluster=cluster, cids="LO1", token=TOKEN)
        [waiting] = job_submit(user=operator, action=1, cluster=cluster, cids="LO2", token=TOKEN)
        errors: list[BaseException] = []
        # A deadlock would cost one of the two transactions its work: PostgreSQL aborts it,
        # and the worker rides it out as a database that blinked, a second later.
        outages: list[dict] = []

        def outage(sender, **kwargs) -> None:
            outages.append(kwargs)

        outage_ended.connect(outage, weak=False)

        def run_first() -> None:
            try:
                job_run(job_id=first.pk)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        runner = threading.Thread(target=run_first)
        runner.start()
        wait_until(lambda: InFlightCall.objects.filter(job_id=first.pk).exists())
        # No slot: the second job waits its turn, to be woken by the first one's end.
        assert job_run(job_id=waiting.pk) is False
        assert Job.objects.get(pk=waiting.pk).waiting_task_id is not None

        with transaction.atomic():
            # As a cancel does: the waiting job's row first, its audit entry last.
            Job.objects.filter(pk=waiting.pk).update(updated_at=timezone.now())
            # The first call ends; its end waits for this row to wake the waiting job.
            wait_until(someone_waits_for_a_lock)
            audit_record(event="job.looked_at", job_id=waiting.pk, details={"by": "test"})
        runner.join(timeout=30)
        outage_ended.disconnect(outage)

    assert not runner.is_alive()
    assert (errors, outages) == ([], [])
    assert Job.objects.get(pk=first.pk).status == Job.Status.SUCCESS
    assert verify_chain().ok
