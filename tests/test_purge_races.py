"""A purge and a retry of the job it deletes, at once: either the purge waits and keeps the job
(it is retried now), or the retry is refused in words; never a database error. PostgreSQL only:
on SQLite a purge's batch and a retry's transaction never overlap."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from jobs.models import Job
from jobs.services import job_retry
from tests.db_locks import someone_waits_for_a_lock
from tests.helpers import TOKEN, wait_until
from tests.test_purge_jobs import make_job

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite transactions never overlap"
    ),
]


def test_a_retry_of_a_job_a_purge_deletes_meanwhile_is_refused_in_words(operator, cluster):
    job = make_job(operator, "FAILED", cluster=cluster)
    locked, errors = threading.Event(), []

    def purge_it() -> None:
        # As a purge's batch does: the job locked, checked, then deleted with its rows.
        try:
            with transaction.atomic():
                Job.objects.select_for_update().get(pk=job.pk)
                locked.set()
                wait_until(someone_waits_for_a_lock)
                Job.objects.filter(pk=job.pk).delete()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    purger = threading.Thread(target=purge_it)
    purger.start()
    assert locked.wait(10)
    with pytest.raises(ValidationError) as refused:
        job_retry(job=job, user=operator, token=TOKEN)
    purger.join(timeout=30)

    assert errors == []
    assert refused.value.error_list[0].code == "retry_purged"
    assert "it was purged" in refused.value.messages[0]
    assert not Job.objects.exists()
