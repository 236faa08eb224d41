"""A job's end reads nothing for its notices while no webhook endpoint is active, and still
hears of an endpoint activated elsewhere: at once in its own process, within LISTENING_TTL
from another."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.services import job_run, job_submit
from notifications import listening
from notifications.listening import LISTENING_TTL, endpoints_maybe_active
from notifications.models import Notice, WebhookEndpoint
from tests.helpers import ROOT, TOKEN, database_url

CREATE = (
    "from notifications.models import WebhookEndpoint; "
    "WebhookEndpoint.objects.create(name='elsewhere', url='http://127.0.0.1:9/hook', "
    "secret='s' * 32)"
)


@pytest.fixture(autouse=True)
def forget():
    listening._none_active_until = None
    yield
    listening._none_active_until = None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_endpoint_created_in_another_process_is_heard_of_within_the_ttl(
    operator, cluster, fake_cluster
):
    found_none = time.monotonic()
    assert not endpoints_maybe_active(now=found_none)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CREATE], cwd=ROOT, env=env, check=True
    )
    # This process trusts what it found for LISTENING_TTL, without a query...
    with CaptureQueriesContext(connection) as queries:
        assert not endpoints_maybe_active(now=found_none + LISTENING_TTL - 0.1)
    assert len(queries) == 0
    # ...then looks again, and a job failing from then on gives the endpoint its notice.
    assert endpoints_maybe_active(now=found_none + LISTENING_TTL)
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="E500", token=TOKEN)
    assert job_run(job_id=job.pk)
    endpoint = WebhookEndpoint.objects.get(name="elsewhere")
    assert Notice.objects.filter(job_id=job.pk, endpoint=endpoint).count() == 1


def test_an_endpoint_saved_in_this_process_is_heard_of_at_once(db):
    assert not endpoints_maybe_active()
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s" * 32)
    assert endpoints_maybe_active()
    endpoint.is_active = False
    endpoint.save()
    assert not endpoints_maybe_active()


def test_a_job_ending_with_no_endpoint_active_reads_nothing_for_notices(
    operator, cluster, fake_cluster
):
    assert not endpoints_maybe_active()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="L2", token=TOKEN)
    with CaptureQueriesContext(connection) as queries:
        assert job_run(job_id=job.pk)
    assert not [q for q in queries.captured_queries if "notifications_" in q["sql"]]
