"""/healthz and /metrics: read from the database, so the same from every process and host."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from jobs.models import InFlightCall, Job
from jobs.services import ReapReport, job_reap_stale, job_run, job_submit
from notifications.models import Notice, WebhookEndpoint
from ops import probe
from ops.heartbeats import Role, heartbeat_start, heartbeat_stop
from ops.models import WorkerHeartbeat
from ops.receivers import count_job_end
from tests.db_locks import probe_row_locked
from tests.fresh_settings import run_python
from tests.helpers import TOKEN, database_url, row_counts

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def ago(**delta) -> dt.datetime:
    return timezone.now() - dt.timedelta(**delta)


def make_job(cluster, operator, status="SUCCESS", **fields) -> Job:
    fields.setdefault("action", Job.Action.TRANS_BEGIN)
    return baker.make(
        Job, user=operator, cluster=cluster, cluster_url=cluster.base_url, status=status, **fields
    )


def submit(operator, cluster, cid: str, action=Job.Action.TRANS_BEGIN) -> Job:
    [job] = job_submit(user=operator, action=action, cluster=cluster, cids=cid, token=TOKEN)
    return job


# /healthz writes its probe row through a connection of its own (ops.probe): on SQLite it
# would wait for the write lock that a test's enclosing transaction holds, so these tests commit.
healthz_test = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def beat_both() -> None:
    heartbeat_start("worker-a")
    heartbeat_start("housekeeping-a", role=Role.HOUSEKEEPING)


@healthz_test
def test_healthz_is_ok_with_a_live_worker_and_housekeeping_and_counts_the_queue(
    client, operator, cluster
):
    beat_both()
    make_job(cluster, operator, status="IN_PROGRESS", created_at=ago(seconds=120))
    make_job(cluster, operator, status="IN_PROGRESS", created_at=ago(seconds=5))
    make_job(cluster, operator, status="IN_PROGRESS", started_at=ago(seconds=1))
    before = row_counts()

    response = client.get("/healthz")

    assert response.status_code == 200
    report = response.json()
    assert report.pop("oldest_queued_seconds") == pytest.approx(120, abs=5)
    assert report == {
        "status": "ok",
        "database": "ok",
        "workers_alive": 1,
        "housekeeping_alive": 1,
        "queued": 2,
    }
    assert response["Cache-Control"].startswith("max-age=0")
    # It writes its one probe row, the same row at every check, and nothing else.
    assert client.get("/healthz").status_code == 200
    assert row_counts() == before | {"ops.WriteProbe": 1}


@healthz_test
def test_healthz_is_503_naming_the_workers_when_no_worker_sent_a_heartbeat_lately(client):
    heartbeat_start("housekeeping-a", role=Role.HOUSEKEEPING)
    assert client.get("/healthz").status_code == 503
    heartbeat_start("worker-a")
    assert client.get("/healthz").status_code == 200
    WorkerHeartbeat.objects.filter(pk="worker-a").update(last_seen=ago(seconds=31))

    response = client.get("/healthz")

    assert response.status_code == 503
    report = response.json()
    assert (report["workers_alive"], report["housekeeping_alive"]) == (0, 1)
    assert report["reason"] == "No worker has sent a heartbeat in the last 30 s."


@healthz_test
def test_healthz_is_503_naming_housekeeping_when_it_sent_no_heartbeat_lately(client):
    beat_both()
    assert client.get("/healthz").status_code == 200
    WorkerHeartbeat.objects.filter(pk="housekeeping-a").update(last_seen=ago(seconds=31))

    response = client.get("/healthz")

    assert response.status_code == 503
    report = response.json()
    assert (report["workers_alive"], report["housekeeping_alive"]) == (1, 0)
    assert report["reason"] == "No housekeeping process has sent a heartbeat in the last 30 s."
    # A housekeeping process is no worker: it is not counted as one, here or in the metrics.
    heartbeat_stop("worker-a")
    heartbeat_start("housekeeping-b", role=Role.HOUSEKEEPING)
    assert client.get("/healthz").json()["workers_alive"] == 0


def test_healthz_is_503_when_the_database_is_unreachable():
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/healthz', HTTP_HOST='127.0.0.1')\n"
        "print(response.status_code, json.dumps(response.json()))\n"
    )
    result = run_python(
        ["-c", script],
        {"SECRET_KEY": "k" * 50, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing"},
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.split(" ", 1)
    assert status == "503"
    assert json.loads(body) == {
        "status": "unavailable",
        "database": "unreachable",
        "reason": "The database cannot be reached.",
    }


def test_metrics_are_off_without_a_token_and_refused_without_the_right_one(client, settings, db):
    assert client.get("/metrics").status_code == 404
    settings.TMS_METRICS_TOKEN = METRICS_TOKEN
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Basic x"}):
        response = client.get("/metrics", **header)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert METRICS_TOKEN not in response.content.decode()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


def scrape(client, settings) -> set[str]:
    settings.TMS_METRICS_TOKEN = METRICS_TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    return set(response.content.decode().splitlines())


def test_metrics_count_what_happened_and_what_is_in_flight(
    client, settings, operator, cluster, fake_cluster
):
    settings.TMS_QUEUE_EXPIRY = 60
    for cid in ("C1", "C2"):
        job_run(job_id=submit(operator, cluster, cid).pk)
    job_run(job_id=submit(operator, cluster, "E500-1", action=Job.Action.PE_ENABLE).pk)
    interrupted = submit(operator, cluster, "C3")
    Job.objects.filter(pk=interrupted.pk).update(started_at=ago(hours=1))
    never_started = submit(operator, cluster, "C4")
    Job.objects.filter(pk=never_started.pk).update(created_at=ago(hours=1))
    assert job_reap_stale() == ReapReport(unknown=[interrupted.pk], expired=[never_started.pk])
    submit(operator, cluster, "C5")
    running = submit(operator, cluster, "C6")
    Job.objects.filter(pk=running.pk).update(started_at=timezone.now())
    InFlightCall.objects.create(cluster=cluster, slot=0, job=running, started_at=timezone.now())
    heartbeat_start("worker-a")
    heartbeat_start("worker-b")
    for _ in range(3):
        client.post(reverse("login"), {"username": "op1", "password": "wrong"})

    lines = scrape(client, settings)

    eu1 = 'cluster="eu1"'
    assert f'tmsdash_jobs_total{{status="SUCCESS",{eu1},action="Trans-Begin"}} 2' in lines
    assert f'tmsdash_jobs_total{{status="FAILED",{eu1},action="PE-Enable"}} 1' in lines
    assert f'tmsdash_jobs_total{{status="FAILED",{eu1},action="Trans-Begin"}} 1' in lines
    assert f'tmsdash_jobs_total{{status="UNKNOWN",{eu1},action="Trans-Begin"}} 1' in lines
    assert "tmsdash_jobs_queued 1" in lines
    assert f"tmsdash_calls_in_flight{{{eu1}}} 1" in lines
    success = f'{eu1},outcome="success"'
    assert f'tmsdash_call_duration_seconds_bucket{{{success},le="+Inf"}} 2' in lines
    assert f"tmsdash_call_duration_seconds_count{{{success}}} 2" in lines
    failed = f'{eu1},outcome="failed"'
    assert f"tmsdash_call_duration_seconds_count{{{failed}}} 1" in lines
    assert 'tmsdash_reaped_total{reason="interrupted"} 1' in lines
    assert 'tmsdash_reaped_total{reason="not_started"} 1' in lines
    assert "tmsdash_signin_failures_total 3" in lines
    assert "tmsdash_workers_alive 2" in lines
    assert "# TYPE tmsdash_call_duration_seconds histogram" in lines


def test_call_durations_fall_in_cumulative_buckets(client, settings, operator, cluster):
    started = ago(minutes=5)
    job = submit(operator, cluster, "C1")
    Job.objects.filter(pk=job.pk).update(started_at=started)
    job.refresh_from_db()
    for seconds in (0.3, 3, 700):
        count_job_end(
            sender=Job,
            job=job,
            status="SUCCESS",
            finished_at=started + dt.timedelta(seconds=seconds),
            reason=None,
        )

    lines = scrape(client, settings)

    success = 'cluster="eu1",outcome="success"'
    for bound, count in (("0.25", 0), ("0.5", 1), ("2.5", 1), ("5", 2), ("600", 2), ("+Inf", 3)):
        assert f'tmsdash_call_duration_seconds_bucket{{{success},le="{bound}"}} {count}' in lines
    assert f"tmsdash_call_duration_seconds_sum{{{success}}} 703.3" in lines
    assert f"tmsdash_call_duration_seconds_count{{{success}}} 3" in lines


def test_every_failed_sign_in_is_counted_even_those_the_audit_trail_leaves_out(
    client, settings, operator
):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(5):
        client.post(reverse("login"), {"username": "op1", "password": "wrong"})
    assert "tmsdash_signin_failures_total 5" in scrape(client, settings)


def test_metrics_count_the_notices_waiting_held_and_given_up(client, settings, operator):
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", secret="s" * 20)
    states = ["PENDING", "PENDING", "HELD", "FAILED", "SENT", "DIGESTED"]
    for state in states:
        channel = {"channel": "webhook", "endpoint": endpoint}
        if state in ("HELD", "DIGESTED"):
            channel = {"channel": "email", "user": operator}
        Notice.objects.create(event_id=uuid.uuid4(), event="job.failed", state=state, **channel)

    lines = scrape(client, settings)

    assert 'tmsdash_notices{channel="webhook",state="PENDING"} 2' in lines
    assert 'tmsdash_notices{channel="webhook",state="FAILED"} 1' in lines
    assert 'tmsdash_notices{channel="email",state="HELD"} 1' in lines
    assert 'tmsdash_notices{channel="email",state="PENDING"} 0' in lines


@healthz_test
def test_healthz_is_503_while_the_database_cannot_be_written_and_200_once_it_can(client):
    beat_both()
    with probe_row_locked(database_url()):
        # Run where a hung probe shows: the request's own busy timeout is 30 s, a load
        # balancer gives up well before; the probe's bound is PROBE_SECONDS.
        answer: list = []
        checking = threading.Thread(target=lambda: answer.append(client.get("/healthz")))
        checking.start()
        checking.join(timeout=10)
        assert not checking.is_alive(), "/healthz waited for the lock"
        [response] = answer
        assert response.status_code == 503
        report = response.json()
        assert report["database"] == "unwritable"
        assert report["reason"].startswith("The database cannot be written: ")
    assert client.get("/healthz").status_code == 200


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL keeps its own disk")
@healthz_test
def test_healthz_is_503_when_the_disk_under_the_sqlite_file_is_nearly_full(client, monkeypatch):
    beat_both()
    assert client.get("/healthz").status_code == 200
    disk = os.statvfs(Path(connection.settings_dict["NAME"]).parent)
    # A threshold above what this disk has free: the disk as nearly full as the check knows.
    monkeypatch.setattr(probe, "MIN_FREE_BYTES", disk.f_bavail * disk.f_frsize + 2**30)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "unwritable"
    assert "is free on its disk" in response.json()["reason"]
