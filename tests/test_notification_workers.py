"""Notices delivered by real `manage.py run_worker` processes, one of them killed mid-delivery,
to a real SMTP server and a real webhook receiver on loopback."""

from __future__ import annotations

import datetime as dt
import signal
import threading

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from jobs.models import Job
from jobs.services import job_submit
from notifications.models import Notice, NoticeAttempt, WebhookEndpoint
from ops.housekeeping import housekeeping_pass
from ops.models import WorkerHeartbeat
from tests.helpers import TOKEN, make_user, wait_until, worker

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

State = Notice.State


@pytest.fixture
def worker_env(monkeypatch, mail):
    """Workers started from here send mail through the loopback SMTP server and retry a
    notice after 1 s."""
    monkeypatch.setenv("EMAIL_URL", mail.url)
    monkeypatch.setenv("TMS_NOTIFY_RETRY_FIRST", "1")
    return mail


@pytest.fixture
def endpoint(receiver):
    return WebhookEndpoint.objects.create(url=receiver.url, secret=receiver.secret)


def queue_empty() -> bool:
    return not DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).exists()


def stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


def test_workers_send_one_notice_per_failed_job_and_none_for_a_success(
    cluster, endpoint, receiver, worker_env
):
    owner = make_user("op2", "Operators", email="op2@example.test")
    [failed] = job_submit(user=owner, action=2, cluster=cluster, cids="E500-1", token=TOKEN)
    [succeeded] = job_submit(user=owner, action=2, cluster=cluster, cids="OK-1", token=TOKEN)
    process = worker()
    try:
        wait_until(lambda: Notice.objects.filter(state=State.SENT).count() == 2 and queue_empty())
    finally:
        output = stop(process)

    [delivery] = receiver.received()
    assert delivery.signature_ok
    assert delivery.payload["job_id"] == str(failed.pk)
    [message] = worker_env.messages
    assert str(failed.pk) in message["Subject"]
    assert message["X-Tmsdash-Event-Id"] == delivery.headers["X-Tmsdash-Event-Id"]
    assert not Notice.objects.filter(job=succeeded).exists()
    assert TOKEN not in output + delivery.body.decode() + message.as_string()


def test_a_receiver_down_for_a_while_gets_each_notice_once_when_it_is_back(
    operator, cluster, endpoint, receiver, worker_env
):
    receiver.status = 503
    jobs = [
        job_submit(user=operator, action=1, cluster=cluster, cids=f"E500-{n}", token=TOKEN)[0]
        for n in range(3)
    ]
    process = worker()
    try:
        wait_until(lambda: NoticeAttempt.objects.filter(ok=False).count() >= 6)
        receiver.status = 200
        wait_until(lambda: Notice.objects.filter(state=State.SENT).count() == 3)
    finally:
        stop(process)

    received = receiver.received()
    acknowledged = [d for d in received if d.payload["job_id"] in {str(j.pk) for j in jobs}]
    by_job: dict[str, set[str]] = {}
    for delivery in acknowledged:
        by_job.setdefault(delivery.payload["job_id"], set()).add(
            delivery.headers["X-Tmsdash-Event-Id"]
        )
    assert sorted(by_job) == sorted(str(j.pk) for j in jobs)
    assert all(len(ids) == 1 for ids in by_job.values())
    assert NoticeAttempt.objects.filter(ok=True).count() == 3
    # Acknowledged once each: the last request for each job is the only 200.
    assert len(received) == NoticeAttempt.objects.count()


def test_a_worker_killed_before_the_notice_was_acknowledged_does_not_lose_it(
    operator, cluster, endpoint, receiver, worker_env
):
    receiver.hold = threading.Event()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="E500-1", token=TOKEN)
    first = worker()
    try:
        # The job ended and its worker is posting the notice: the receiver has it, unanswered.
        assert receiver.started.wait(60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    notice = Notice.objects.get()
    assert (notice.state, notice.attempts) == (State.PENDING, 1)

    # Housekeeping finds the worker silent, ends its task and gives the notice back at once.
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - dt.timedelta(minutes=1))
    report = housekeeping_pass()
    assert report.notices_requeued == 1
    held, receiver.hold = receiver.hold, None
    held.set()
    second = worker()
    try:
        wait_until(lambda: Notice.objects.filter(state=State.SENT).exists())
    finally:
        stop(second)

    first_try, second_try = receiver.received()
    assert first_try.headers["X-Tmsdash-Event-Id"] == second_try.headers["X-Tmsdash-Event-Id"]
    assert second_try.payload == first_try.payload
    notice.refresh_from_db()
    assert (notice.state, notice.attempts) == (State.SENT, 2)
