"""Which notices a job's end writes, and to whom: in the transaction that ends it."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from jobs.models import Job
from jobs.services import job_cancel, job_reap_stale, job_submit
from jobs.tasks import run_job
from notifications.models import Notice, NotificationPreference, WebhookEndpoint
from notifications.tasks import record_batch_end
from tests.helpers import TOKEN, make_user

pytestmark = pytest.mark.django_db

Status = Job.Status


@pytest.fixture
def mail_on(settings):
    settings.TMS_MAIL_ENABLED = True


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s" * 32)


def submit(user, cluster, cids):
    return job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)


def run_jobs():
    """Run the queued jobs, then the looks at their batches they queue; not the deliveries of
    the notices (those are tested elsewhere)."""
    for task in (run_job, record_batch_end):
        for result in DBTaskResult.objects.ready().filter(task_path=task.module_path):
            result.task.call(*result.args_kwargs["args"])


def notices(**filters):
    return list(Notice.objects.filter(**filters).order_by("channel", "user_id"))


def test_a_failed_job_writes_one_notice_per_recipient(operator, cluster, endpoint, mail_on):
    operator.email = "op1@example.test"
    operator.save()
    [job] = submit(operator, cluster, "E500-1")
    run_jobs()
    job.refresh_from_db()
    assert job.status == Status.FAILED
    written = notices(job=job)
    assert [(n.channel, n.event) for n in written] == [
        ("email", "job.failed"),
        ("webhook", "job.failed"),
    ]
    assert written[0].event_id == written[1].event_id
    payload = written[1].payload
    assert payload["job_id"] == str(job.pk)
    assert payload["status"] == "FAILED"
    assert payload["http_status"] == 500
    assert payload["cluster"] == "eu1"
    assert payload["customer_count"] == 1
    assert payload["url"].endswith(f"/jobs/{job.pk}/")
    assert TOKEN not in str(payload)


def test_a_success_writes_nothing_unless_someone_asked_for_successes(
    operator, cluster, endpoint, mail_on
):
    operator.email = "op1@example.test"
    operator.save()
    [job] = submit(operator, cluster, "OK-1")
    run_jobs()
    assert notices() == []

    endpoint.events = [*endpoint.events, "job.succeeded"]
    endpoint.save()
    NotificationPreference.objects.create(user=operator, successes=True)
    [job] = submit(operator, cluster, "OK-2")
    run_jobs()
    assert [(n.channel, n.event) for n in notices(job=job)] == [
        ("email", "job.succeeded"),
        ("webhook", "job.succeeded"),
    ]


def test_a_batch_of_three_with_one_failure_writes_one_notice(operator, cluster, endpoint):
    cluster.max_cids_per_request = 1
    cluster.save()
    submit(operator, cluster, "OK-1 E500-2 OK-3")
    run_jobs()
    [notice] = notices()
    assert notice.event == "batch.ended"
    assert notice.payload["status"] == "FAILED"
    assert notice.payload["parts"] == {"SUCCESS": 2, "FAILED": 1}
    assert notice.payload["customer_count"] == 3
    assert notice.payload["error"] == "1 of 3 parts did not succeed (2 SUCCESS, 1 FAILED)"


def test_a_batch_that_all_succeeded_writes_nothing_for_failure_subscribers(
    operator, cluster, endpoint
):
    cluster.max_cids_per_request = 1
    cluster.save()
    submit(operator, cluster, "OK-1 OK-2")
    run_jobs()
    assert notices() == []


def test_a_job_expired_in_the_queue_is_its_own_event(operator, cluster, endpoint, settings):
    settings.TMS_QUEUE_EXPIRY = 0
    [job] = submit(operator, cluster, "OK-1")
    job_reap_stale()
    [notice] = notices(job=job)
    assert notice.event == "job.expired"


def test_a_cancelled_job_writes_nothing(operator, cluster, endpoint):
    [job] = submit(operator, cluster, "OK-1")
    job_cancel(job_ids=[job.pk], user=operator)
    assert notices() == []


def test_the_notices_roll_back_with_the_jobs_end(operator, cluster, endpoint, settings):
    settings.TMS_QUEUE_EXPIRY = 0
    [job] = submit(operator, cluster, "OK-1")
    with pytest.raises(RuntimeError), transaction.atomic():
        job_reap_stale()
        assert len(notices()) == 1
        raise RuntimeError
    assert notices() == []
    job.refresh_from_db()
    assert job.status == Status.IN_PROGRESS


def test_everyones_failures_go_only_to_those_who_may_see_them(cluster, mail_on):
    owner = make_user("op2", "Operators", email="op2@example.test")
    auditor = make_user("aud", "Auditors", email="aud@example.test")
    other_operator = make_user("op3", "Operators", email="op3@example.test")
    for user in (auditor, other_operator):
        NotificationPreference.objects.create(user=user, all_jobs=True)
    [job] = submit(owner, cluster, "E500-1")
    run_jobs()
    assert {n.user.username for n in notices(job=job)} == {"op2", "aud"}


def test_watchers_may_narrow_everyones_failures_to_clusters_and_actions(cluster, mail_on):
    from django.contrib.auth.models import Permission
    from model_bakery import baker

    other_cluster = baker.make("jobs.Cluster", name="us1", base_url="http://127.0.0.1:9")
    owner = make_user("op2", "Operators")
    admin = make_user("root", email="root@example.test", is_superuser=True)
    direct = make_user("direct", email="direct@example.test")
    direct.user_permissions.add(Permission.objects.get(codename="view_all_jobs"))
    gone = make_user("gone", "Auditors", email="gone@example.test", is_active=False)
    silent = make_user("silent", "Auditors")
    NotificationPreference.objects.create(user=admin, all_jobs=True, actions=[2])
    narrowed = NotificationPreference.objects.create(user=direct, all_jobs=True)
    narrowed.clusters.add(other_cluster)
    for user in (gone, silent):
        NotificationPreference.objects.create(user=user, all_jobs=True)

    [on_eu1] = job_submit(user=owner, action=1, cluster=cluster, cids="E500-1", token=TOKEN)
    [pe_enable] = job_submit(user=owner, action=2, cluster=cluster, cids="E500-2", token=TOKEN)
    [on_us1] = job_submit(user=owner, action=1, cluster=other_cluster, cids="E500-3", token=TOKEN)
    run_jobs()

    def told(job):
        return {n.user.username for n in notices(job=job)}

    # The owner has no address; the inactive and address-less watchers get nothing.
    assert told(on_eu1) == set()
    assert told(pe_enable) == {"root"}
    assert told(on_us1) == {"direct"}


def test_a_batch_whose_last_part_was_cancelled_still_gives_its_notice(operator, cluster, endpoint):
    cluster.max_cids_per_request = 1
    cluster.save()
    first, second = submit(operator, cluster, "E500-1 OK-2")
    run_job.call(str(first.pk))
    job_cancel(job_ids=[second.pk], user=operator)
    run_jobs()
    [notice] = notices()
    assert notice.payload["parts"] == {"FAILED": 1, "CANCELLED": 1}
