"""Cancelling queued jobs: CANCELLED means the cluster was never called; a job the worker
claimed first is refused; the page, the batch page and `manage.py cancel_job` all do it."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from jobs.badges import status_badge
from jobs.models import InFlightCustomer, Job, JobToken
from jobs.services import job_cancel, job_run, job_submit
from tests.helpers import THREADS, TOKEN, make_user, row_counts, run_concurrently


def submit(user, cluster, cids: str) -> list[Job]:
    return job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)


def test_a_queued_job_ends_cancelled_and_its_task_never_calls_the_cluster(
    operator, cluster, fake_cluster, run_queued_tasks
):
    [job] = submit(operator, cluster, "C1 C2")

    report = job_cancel(job_ids=[job.pk], user=operator, ip_address="10.1.2.3")

    assert (report.cancelled, report.refused) == ([job.pk], {})
    job.refresh_from_db()
    assert job.status == "CANCELLED" and job.finished_at is not None
    assert job.error_message == "Cancelled by op1 before it was sent to the cluster."
    assert not InFlightCustomer.objects.filter(job=job).exists()
    assert not JobToken.objects.filter(job=job).exists()
    [entry] = AuditEntry.objects.filter(job_id=job.pk, event="job.cancelled")
    assert (entry.actor, entry.ip_address) == (operator, "10.1.2.3")
    run_queued_tasks()
    assert fake_cluster.count(str(job.pk)) == 0
    assert Job.objects.get(pk=job.pk).status == "CANCELLED"
    # Its customers are free again.
    submit(operator, cluster, "C1 C2")


def test_a_started_or_ended_job_is_refused_and_left_alone(operator, cluster):
    started, ended = submit(operator, cluster, "C1")[0], submit(operator, cluster, "C2")[0]
    Job.objects.filter(pk=started.pk).update(started_at=timezone.now())
    Job.objects.filter(pk=ended.pk).update(status="SUCCESS")
    before = row_counts()

    report = job_cancel(job_ids=[started.pk, ended.pk], user=operator)

    assert report.cancelled == []
    assert report.refused == {
        started.pk: "It was already sent to the cluster: it can no longer be cancelled.",
        ended.pk: "It has already ended (SUCCESS).",
    }
    assert row_counts() == before


def test_only_the_operator_or_an_admin_may_cancel(operator, cluster):
    [job] = submit(operator, cluster, "C1")
    auditor = make_user("aud1", "Auditors")
    for other in (make_user("op2", "Operators"), auditor):
        with pytest.raises(PermissionDenied):
            job_cancel(job_ids=[job.pk], user=other)
    assert Job.objects.get(pk=job.pk).status == "IN_PROGRESS"
    admin = make_user("root", is_superuser=True)
    assert job_cancel(job_ids=[job.pk], user=admin).cancelled == [job.pk]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_cancel_racing_the_worker_ends_each_job_one_way(operator, cluster, fake_cluster):
    cluster.max_concurrent_calls = THREADS
    cluster.save()
    jobs = [submit(operator, cluster, f"RACE{n}")[0] for n in range(THREADS * 3)]
    ids = [job.pk for job in jobs]

    def work(n: int) -> object:
        if n % 2:
            return job_cancel(job_ids=ids[n::2], user=operator)
        return [job_run(job_id=pk) for pk in ids]

    _, errors = run_concurrently(work)

    assert errors == []
    for job in Job.objects.filter(pk__in=ids):
        calls = fake_cluster.count(str(job.pk))
        events = set(AuditEntry.objects.filter(job_id=job.pk).values_list("event", flat=True))
        if job.status == "CANCELLED":
            assert (job.started_at, calls) == (None, 0)
            assert "job.succeeded" not in events
        else:
            assert (job.status, calls) == ("SUCCESS", 1)
            assert "job.cancelled" not in events


def test_the_job_page_offers_cancel_while_queued_and_cancels(client, operator, cluster):
    [job] = submit(operator, cluster, "C1")
    client.force_login(operator)
    page = reverse("job_detail", args=[job.pk])
    assert 'id="cancel-button"' in client.get(page).content.decode()

    response = client.post(reverse("job_cancel", args=[job.pk]), follow=True)

    assert response.redirect_chain == [(page, 302)]
    content = response.content.decode()
    assert "Cancelled 1 job(s) before they were sent to the cluster." in content
    assert str(status_badge(Job.objects.get(pk=job.pk))) in content
    assert 'class="badge badge-cancelled"' in content
    assert 'id="cancel-button"' not in content


def test_the_job_page_says_why_a_started_job_was_not_cancelled(client, operator, cluster):
    [job] = submit(operator, cluster, "C1")
    client.force_login(operator)
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now())
    response = client.post(reverse("job_cancel", args=[job.pk]), follow=True)
    assert "can no longer be cancelled" in response.content.decode()
    assert Job.objects.get(pk=job.pk).status == "IN_PROGRESS"


def test_an_auditor_sees_no_cancel_and_is_refused(client, operator, cluster):
    [job] = submit(operator, cluster, "C1")
    client.force_login(make_user("aud1", "Auditors"))
    assert (
        'id="cancel-button"'
        not in client.get(reverse("job_detail", args=[job.pk])).content.decode()
    )
    assert client.post(reverse("job_cancel", args=[job.pk])).status_code == 403
    assert client.get(reverse("job_cancel", args=[job.pk])).status_code == 405
    assert Job.objects.get(pk=job.pk).status == "IN_PROGRESS"


def test_the_batch_page_cancels_every_queued_part(client, operator, cluster):
    cluster.max_cids_per_request = 1
    cluster.save()
    first, second, third = submit(operator, cluster, "C1 C2 C3")
    Job.objects.filter(pk=first.pk).update(started_at=timezone.now())
    client.force_login(operator)
    page = reverse("batch_detail", args=[first.batch_id])
    assert 'id="batch-cancel-button"' in client.get(page).content.decode()

    response = client.post(reverse("batch_cancel", args=[first.batch_id]), follow=True)

    assert response.redirect_chain == [(page, 302)]
    assert "Cancelled 2 job(s)" in response.content.decode()
    statuses = dict(Job.objects.filter(batch_id=first.batch_id).values_list("pk", "status"))
    assert statuses == {first.pk: "IN_PROGRESS", second.pk: "CANCELLED", third.pk: "CANCELLED"}
    assert 'data-count="CANCELLED">2<' in response.content.decode()
    assert 'id="batch-cancel-button"' not in response.content.decode()


def test_the_jobs_list_filters_cancelled_jobs(client, operator, cluster):
    cancelled, queued = submit(operator, cluster, "C1")[0], submit(operator, cluster, "C2")[0]
    job_cancel(job_ids=[cancelled.pk], user=operator)
    client.force_login(operator)
    content = client.get(reverse("job_list"), {"status": "CANCELLED"}).content.decode()
    assert str(cancelled.pk) in content and str(queued.pk) not in content


def test_cancel_job_command_cancels_and_names_what_it_could_not(operator, cluster):
    queued, started = submit(operator, cluster, "C1")[0], submit(operator, cluster, "C2")[0]
    Job.objects.filter(pk=started.pk).update(started_at=timezone.now())
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 job\\(s\\) not cancelled"):
        call_command("cancel_job", str(queued.pk), str(started.pk), stdout=out)

    assert f"{queued.pk} CANCELLED" in out.getvalue()
    assert f"{started.pk} not cancelled: It was already sent" in out.getvalue()
    [entry] = AuditEntry.objects.filter(job_id=queued.pk, event="job.cancelled")
    assert entry.actor is None
    assert Job.objects.get(pk=queued.pk).error_message.startswith("Cancelled by a maintainer")


def test_cancel_job_command_refuses_what_is_not_a_job_id(db):
    with pytest.raises(CommandError, match="'nope' is not a job id"):
        call_command("cancel_job", "nope")
