"""A job's end reads nothing more for its notices while no webhook endpoint is active, and
hears at once of an endpoint activated anywhere: in another process, the next job to end
gives it its notice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.services import job_run, job_submit
from notifications.listening import endpoints_active
from notifications.models import Notice, WebhookEndpoint
from tests.helpers import ROOT, TOKEN, database_url

CREATE = (
    "from notifications.models import WebhookEndpoint; "
    "WebhookEndpoint.objects.create(name='elsewhere', url='http://127.0.0.1:9/hook', "
    "secret='s' * 32)"
)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_endpoint_created_in_another_process_hears_of_the_next_job_to_end(
    operator, cluster, fake_cluster
):
    [before] = job_submit(user=operator, action=1, cluster=cluster, cids="E1", token=TOKEN)
    assert job_run(job_id=before.pk)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CREATE], cwd=ROOT, env=env, check=True
    )
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="E500", token=TOKEN)
    assert job_run(job_id=job.pk)
    endpoint = WebhookEndpoint.objects.get(name="elsewhere")
    assert Notice.objects.filter(job_id=job.pk, endpoint=endpoint).count() == 1


def test_whether_an_endpoint_is_active_is_asked_each_time(db):
    assert not endpoints_active()
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s" * 32)
    assert endpoints_active()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert not endpoints_active()


def test_a_job_ending_with_no_endpoint_active_reads_nothing_more_for_notices(
    operator, cluster, fake_cluster
):
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="L2", token=TOKEN)
    with CaptureQueriesContext(connection) as queries:
        assert job_run(job_id=job.pk)
    read = [q["sql"] for q in queries.captured_queries if "notifications_" in q["sql"]]
    assert len(read) == 1 and "is_active" in read[0], read
