"""Delivering notices to a real SMTP server and a real webhook receiver on loopback."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import uuid

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from jobs.models import Job
from jobs.services import job_interrupted
from notifications import webhooks
from notifications.delivery import notice_deliver, notices_recover
from notifications.events import notices_record_batch_end, notices_record_job_end
from notifications.models import Notice, NoticeAttempt, WebhookEndpoint
from notifications.tasks import deliver_notice, record_batch_end
from tests.e2e import make_job
from tests.helpers import TOKEN, make_user, run_concurrently
from tests.servers import LoopbackServer, answer

pytestmark = pytest.mark.django_db

State = Notice.State


@pytest.fixture
def endpoint(receiver):
    return WebhookEndpoint.objects.create(url=receiver.url, secret=receiver.secret)


def failed_job(user, cluster, **fields) -> Job:
    """A job that just FAILED, its notices written as its end writes them."""
    job = make_job(
        user,
        cluster,
        Job.Status.FAILED,
        http_status=500,
        error_message="API returned status 500: boom",
        **fields,
    )
    notices_record_job_end(job_id=job.pk, status=job.status, reason=None)
    return job


def deliver_all(now=None) -> None:
    for notice_id in Notice.objects.values_list("pk", flat=True):
        notice_deliver(notice_id=notice_id, now=now)


def test_a_webhook_notice_is_posted_signed_and_acknowledged(operator, cluster, endpoint, receiver):
    job = failed_job(operator, cluster)
    [notice] = Notice.objects.all()
    assert notice_deliver(notice_id=notice.pk)

    [delivery] = receiver.received()
    assert delivery.signature_ok
    assert delivery.headers["X-Tmsdash-Event-Id"] == str(notice.event_id)
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.payload == {
        "event": "job.failed",
        "event_id": str(notice.event_id),
        "job_id": str(job.pk),
        "status": "FAILED",
        "http_status": 500,
        "error": "API returned status 500: boom",
        "cluster": "eu1",
        "action": "T-Enable",
        "operator": "op1",
        "customer_count": 2,
        "url": f"http://127.0.0.1:8000/jobs/{job.pk}/",
        "occurred_at": job.finished_at.isoformat(),
    }
    notice.refresh_from_db()
    assert notice.state == State.SENT
    [attempt] = NoticeAttempt.objects.all()
    assert (attempt.ok, attempt.http_status) == (True, 204)
    # Acknowledged: never sent again, however often its task runs.
    assert not notice_deliver(notice_id=notice.pk)
    assert len(receiver.received()) == 1


def test_the_signature_covers_the_timestamp_and_the_body():
    body = webhooks.webhook_body({"b": 1, "a": "x"})
    assert body == b'{"a":"x","b":1}'
    signature = webhooks.webhook_signature("secret", 1700000000, body)
    assert signature == (
        "sha256=" + __import__("hmac").new(b"secret", b"1700000000." + body, "sha256").hexdigest()
    )
    assert webhooks.webhook_signature("secret", 1700000001, body) != signature
    assert webhooks.webhook_signature("other", 1700000000, body) != signature


def test_an_email_notice_has_the_job_in_its_subject_and_the_event_in_its_message_id(cluster, mail):
    owner = make_user("op2", "Operators", email="op2@example.test")
    job = failed_job(owner, cluster)
    [notice] = Notice.objects.all()
    notice_deliver(notice_id=notice.pk)

    [message] = mail.messages
    assert message["To"] == "op2@example.test"
    assert message["Subject"] == f"[tmsdash] Job {job.pk} FAILED: T-Enable on eu1"
    assert message["Message-ID"] == f"<{notice.event_id}@127.0.0.1>"
    assert message["X-Tmsdash-Event-Id"] == str(notice.event_id)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert str(job.pk) in part
        assert "API returned status 500: boom" in part
        assert f"http://127.0.0.1:8000/jobs/{job.pk}/" in part
        assert "http://127.0.0.1:8000/accounts/notifications/" in part
        assert TOKEN not in part
    notice.refresh_from_db()
    assert notice.state == State.SENT


def test_a_receiver_down_then_up_gets_every_notice_once_with_the_same_event_id(
    operator, cluster, endpoint, receiver, settings
):
    jobs = [failed_job(operator, cluster) for _ in range(5)]
    receiver.status = 503
    deliver_all()
    assert Notice.objects.filter(state=State.PENDING, attempts=1).count() == 5
    # Not due yet: nothing is tried before its backoff.
    deliver_all()
    assert len(receiver.received()) == 5

    receiver.status = 200
    later = timezone.now() + dt.timedelta(seconds=settings.TMS_NOTIFY_RETRY_FIRST + 1)
    deliver_all(now=later)
    deliver_all(now=later)

    acknowledged = [d for d in receiver.received()[5:]]
    assert sorted(d.payload["job_id"] for d in acknowledged) == sorted(str(j.pk) for j in jobs)
    first_ids = {
        d.payload["job_id"]: d.headers["X-Tmsdash-Event-Id"] for d in receiver.received()[:5]
    }
    assert all(
        first_ids[d.payload["job_id"]] == d.headers["X-Tmsdash-Event-Id"] for d in acknowledged
    )
    assert all(d.signature_ok for d in receiver.received())
    assert Notice.objects.filter(state=State.SENT).count() == 5
    assert NoticeAttempt.objects.filter(ok=False, http_status=503).count() == 5


def test_retries_back_off_and_give_up_after_the_retry_window(
    operator, cluster, endpoint, receiver, settings
):
    failed_job(operator, cluster)
    notice = Notice.objects.get()
    receiver.status = 500
    now = timezone.now()
    waits = []
    for _ in range(4):
        assert notice_deliver(notice_id=notice.pk, now=now)
        notice.refresh_from_db()
        waits.append(round((notice.next_attempt_at - now).total_seconds()))
        now = notice.next_attempt_at
    first = settings.TMS_NOTIFY_RETRY_FIRST
    assert waits == pytest.approx([first, 2 * first, 4 * first, 8 * first], abs=2)
    # Each retry is a task queued for its time.
    assert DBTaskResult.objects.filter(task_path=deliver_notice.module_path).count() >= 5

    Notice.objects.filter(pk=notice.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=settings.TMS_NOTIFY_RETRY_FOR + 1)
    )
    assert notice_deliver(notice_id=notice.pk, now=now)
    notice.refresh_from_db()
    assert notice.state == State.FAILED
    assert notice.last_error == "HTTP 500"
    assert notice.attempts == 5
    assert NoticeAttempt.objects.filter(notice=notice).count() == 5


def test_a_redirect_is_an_unacknowledged_attempt_and_is_not_followed(
    operator, cluster, endpoint, receiver
):
    failed_job(operator, cluster)
    receiver.status = 302
    deliver_all()
    assert len(receiver.received()) == 1
    notice = Notice.objects.get()
    assert notice.state == State.PENDING
    assert notice.last_error == "HTTP 302: redirects are not followed"


def test_an_endpoint_at_a_metadata_address_is_never_called(operator, cluster):
    WebhookEndpoint.objects.create(url="http://169.254.169.254/latest", secret="x" * 20)
    failed_job(operator, cluster)
    deliver_all()
    notice = Notice.objects.get()
    assert notice.last_error.startswith("Not sent: The host 169.254.169.254 is a link-local")


def test_a_receiver_that_answers_too_late_has_not_acknowledged(
    operator, cluster, endpoint, receiver, monkeypatch
):
    monkeypatch.setattr(webhooks, "WEBHOOK_TIMEOUT_SECONDS", 0.5)
    receiver.hold = threading.Event()
    failed_job(operator, cluster)
    deliver_all()
    receiver.hold.set()
    notice = Notice.objects.get()
    assert notice.state == State.PENDING
    assert notice.last_error == "No answer within 0.5s"


def test_a_deactivated_endpoint_drops_its_pending_notices(operator, cluster, endpoint, receiver):
    failed_job(operator, cluster)
    WebhookEndpoint.objects.update(is_active=False)
    deliver_all()
    assert receiver.received() == []
    notice = Notice.objects.get()
    assert (notice.state, notice.last_error) == (
        State.DROPPED,
        "The webhook endpoint was deactivated.",
    )


def test_fifty_failures_to_one_user_become_ten_emails_and_one_digest(cluster, mail, settings):
    owner = make_user("op2", "Operators", email="op2@example.test")
    jobs = [failed_job(owner, cluster) for _ in range(50)]
    deliver_all()
    assert len(mail.messages) == settings.TMS_NOTIFY_DIGEST_AFTER == 10
    digest = Notice.objects.get(event=Notice.DIGEST)
    assert Notice.objects.filter(state=State.HELD, digest=digest).count() == 40

    # The digest goes at the end of the window, with every held notice in it.
    deliver_all()
    assert len(mail.messages) == 10
    later = timezone.now() + dt.timedelta(seconds=settings.TMS_NOTIFY_DIGEST_WINDOW + 1)
    notice_deliver(notice_id=digest.pk, now=later)
    assert len(mail.messages) == 11
    message = mail.messages[-1]
    assert message["Subject"] == "[tmsdash] 40 notices in one digest"
    assert message["Message-ID"] == f"<{digest.event_id}@127.0.0.1>"
    text = message.get_body(("plain",)).get_content()
    alone = {m["X-Tmsdash-Event-Id"] for m in mail.messages[:10]}
    held = Notice.objects.filter(digest=digest)
    assert all(str(n.event_id) in text and str(n.event_id) not in alone for n in held)
    assert sum(str(job.pk) in text for job in jobs) == 40
    assert Notice.objects.filter(state=State.DIGESTED).count() == 40
    assert Notice.objects.filter(state=State.SENT).count() == 11


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_workers_delivering_at_once_still_send_ten_alone_and_hold_the_rest(cluster, mail, settings):
    owner = make_user("op2", "Operators", email="op2@example.test")
    for _ in range(24):
        failed_job(owner, cluster)
    ids = list(Notice.objects.values_list("pk", flat=True))

    def work(n: int) -> None:
        for notice_id in ids[n::8]:
            notice_deliver(notice_id=notice_id)

    _results, errors = run_concurrently(work)
    assert errors == []
    assert len(mail.messages) == 10
    assert Notice.objects.filter(state=State.HELD).count() == 14
    assert Notice.objects.filter(event=Notice.DIGEST).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_notice_taken_by_many_workers_at_once_is_sent_once(operator, cluster, endpoint, receiver):
    failed_job(operator, cluster)
    notice = Notice.objects.get()
    results, errors = run_concurrently(lambda n: notice_deliver(notice_id=notice.pk))
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    assert len(receiver.received()) == 1


def record_batch_ends() -> list:
    """Run the queued looks at batches, each in a thread of its own, all at once."""
    queued = DBTaskResult.objects.ready().filter(task_path=record_batch_end.module_path)
    batch_ids = [result.args_kwargs["args"][0] for result in queued]
    return run_concurrently(lambda n: record_batch_end.call(batch_ids[n % len(batch_ids)]))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_batch_parts_ending_at_once_give_one_batch_notice(operator, cluster, endpoint):
    # Eight parts ending at once the same way: their ends share rows (the metrics' counters),
    # and nothing they do for the batch's notice may make them wait on each other.
    batch_id = uuid.uuid4()
    parts = [
        make_job(
            operator,
            cluster,
            Job.Status.IN_PROGRESS,
            batch_id=batch_id,
            batch_seq=n + 1,
            started_at=timezone.now(),
        )
        for n in range(8)
    ]
    results, errors = run_concurrently(
        lambda n: job_interrupted(job_id=parts[n].pk, last_seen=timezone.now())
    )
    assert errors == []
    assert results == [True] * 8
    assert Notice.objects.count() == 0

    # Each part queued a look at the batch; all eight at once write the notice once.
    _results, errors = record_batch_ends()
    assert errors == []
    [notice] = Notice.objects.all()
    assert notice.batch_id == batch_id
    assert notice.payload["parts"] == {"UNKNOWN": 8}


def test_a_look_at_a_batch_with_a_part_in_progress_writes_nothing(operator, cluster, endpoint):
    batch_id = uuid.uuid4()
    make_job(operator, cluster, Job.Status.FAILED, batch_id=batch_id, batch_seq=1)
    make_job(operator, cluster, Job.Status.IN_PROGRESS, batch_id=batch_id, batch_seq=2)
    assert notices_record_batch_end(batch_id=batch_id) == []
    Job.objects.filter(batch_id=batch_id, batch_seq=2).update(
        status=Job.Status.SUCCESS, finished_at=timezone.now()
    )
    assert len(notices_record_batch_end(batch_id=batch_id)) == 1
    assert notices_record_batch_end(batch_id=batch_id) != [] and Notice.objects.count() == 1


def test_housekeeping_queues_again_a_notice_whose_task_was_lost(operator, cluster, endpoint):
    failed_job(operator, cluster)
    notice = Notice.objects.get()
    DBTaskResult.objects.all().delete()
    assert notices_recover(now=timezone.now()) == 0
    assert notices_recover(now=timezone.now() + dt.timedelta(minutes=3)) == 1
    assert DBTaskResult.objects.filter(
        task_path=deliver_notice.module_path, args_kwargs__args=[str(notice.pk)]
    ).exists()


def test_a_receiver_that_is_down_is_told_apart_from_one_that_answers_badly(
    operator, cluster, receiver
):
    from tests.helpers import free_port

    WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{free_port()}/", secret="x" * 20)
    failed_job(operator, cluster)
    deliver_all()
    notice = Notice.objects.get()
    assert notice.last_error == "Connection failed: connection refused"
    [attempt] = notice.attempts_made.all()
    assert (attempt.ok, attempt.http_status) == (False, None)


def test_no_proxy_or_netrc_credentials_from_the_environment_reach_a_webhook(
    operator, cluster, endpoint, receiver, monkeypatch, tmp_path
):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("NO_PROXY", "")
    failed_job(operator, cluster)
    deliver_all()
    [delivery] = receiver.received()
    assert "Authorization" not in delivery.headers
    assert Notice.objects.get().state == State.SENT


def garbage(handler) -> None:
    handler.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")


def closes(handler) -> None:
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def huge(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(50 * 1024 * 1024))
    handler.end_headers()
    handler.wfile.write(b"x" * 1024 * 1024)


@pytest.mark.parametrize(
    ("respond", "ok", "error"),
    [
        (garbage, False, "Connection failed: "),
        (closes, False, "Connection failed: the endpoint closed the connection without answering"),
        (answer(200, b"x" * 10, content_type="text/plain"), True, ""),
        (huge, True, ""),
        (answer(999), False, "HTTP 999"),
    ],
    ids=["garbage", "closed", "odd-body", "huge-body", "odd-status"],
)
def test_whatever_a_receiver_answers_is_recorded_as_an_attempt(
    operator, cluster, respond, ok, error
):
    with LoopbackServer(respond) as server:
        WebhookEndpoint.objects.create(url=server.url + "/hook", secret="x" * 20)
        failed_job(operator, cluster)
        deliver_all()
    notice = Notice.objects.get()
    [attempt] = notice.attempts_made.all()
    assert attempt.ok is ok
    assert attempt.error.startswith(error)
    assert notice.state == (State.SENT if ok else State.PENDING)


def test_a_notice_whose_user_lost_their_address_is_dropped_unsent(cluster, mail):
    owner = make_user("op2", "Operators", email="op2@example.test")
    failed_job(owner, cluster)
    owner.email = ""
    owner.save()
    deliver_all()
    assert mail.messages == []
    notice = Notice.objects.get()
    assert (notice.state, notice.last_error) == (
        State.DROPPED,
        "The user is inactive or has no e-mail address.",
    )


def test_an_endpoint_whose_secret_can_no_longer_be_read_is_not_posted_to(
    operator, cluster, endpoint, receiver, settings
):
    from cryptography.fernet import Fernet

    failed_job(operator, cluster)
    settings.TMS_TOKEN_KEY = Fernet.generate_key().decode()
    deliver_all()
    assert receiver.received() == []
    notice = Notice.objects.get()
    assert notice.state == State.DROPPED
    assert notice.last_error.startswith("The endpoint's URL and secret cannot be read")


def test_a_recipient_the_mail_server_refuses_fails_at_once_without_retries(cluster, mail):
    owner = make_user("op2", "Operators", email="gone@example.test")
    failed_job(owner, cluster)
    mail.refuse("gone@example.test")
    deliver_all()
    notice = Notice.objects.get()
    assert (notice.state, notice.attempts) == (State.FAILED, 1)
    assert notice.last_error == "The mail server refused the recipient's address"
    assert mail.messages == []
