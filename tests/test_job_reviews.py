"""Marking a job with an unknown outcome as looked at: who may, only UNKNOWN jobs, once,
audited, shown on the job's page, and the Overview's count of those nobody looked at."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from jobs.badges import moment
from jobs.models import Job, JobReview
from jobs.services import job_mark_looked_at
from tests.helpers import make_user, row_counts

pytestmark = pytest.mark.django_db


def unknown_job(user, **fields) -> Job:
    return baker.make(Job, user=user, action=1, status=Job.Status.UNKNOWN, **fields)


@pytest.fixture
def admin_operator(db):
    """May run Set Actions and see every job: the on-call engineer."""
    user = make_user("oncall", "Operators")
    user.groups.add(*make_user("tmp", "Auditors").groups.all())
    return user


def test_the_jobs_operator_marks_it_with_a_note_audited(operator):
    job = unknown_job(operator)

    review = job_mark_looked_at(
        job=job, user=operator, note="  Applied on the cluster.  ", ip_address="10.0.0.7"
    )

    assert (review.job, review.reviewed_by, review.note) == (
        job,
        operator,
        "Applied on the cluster.",
    )
    [entry] = AuditEntry.objects.filter(job_id=job.pk, event=AuditEntry.Event.JOB_LOOKED_AT)
    assert (entry.actor, entry.ip_address, entry.details) == (
        operator,
        "10.0.0.7",
        {"note": "Applied on the cluster."},
    )
    assert entry.get_event_display() == "Unknown outcome looked at"


def test_someone_who_sees_every_job_and_runs_set_actions_marks_anothers_job(
    operator, admin_operator
):
    job = unknown_job(operator)

    job_mark_looked_at(job=job, user=admin_operator)

    assert JobReview.objects.get(job=job).reviewed_by == admin_operator


@pytest.mark.parametrize("who", ["other operator", "auditor"])
def test_others_and_read_only_auditors_are_refused_with_nothing_written(operator, who):
    job = unknown_job(operator)
    user = make_user("x", "Operators" if who == "other operator" else "Auditors")
    before = row_counts()

    with pytest.raises(PermissionDenied):
        job_mark_looked_at(job=job, user=user, note="mine")

    assert row_counts() == before


@pytest.mark.parametrize("status", ["SUCCESS", "FAILED", "IN_PROGRESS", "CANCELLED"])
def test_a_job_whose_outcome_is_known_is_refused_with_nothing_written(operator, status):
    job = baker.make(Job, user=operator, action=1, status=status)
    before = row_counts()

    with pytest.raises(ValidationError, match="Only a job with an unknown outcome"):
        job_mark_looked_at(job=job, user=operator)

    assert row_counts() == before


def test_a_note_over_1000_characters_is_refused_with_nothing_written(operator):
    job = unknown_job(operator)
    before = row_counts()

    with pytest.raises(ValidationError, match="longer than 1000"):
        job_mark_looked_at(job=job, user=operator, note="x" * 1001)

    assert row_counts() == before
    job_mark_looked_at(job=job, user=operator, note="x" * 1000)


def test_the_first_look_stands_a_second_is_refused_naming_who_looked(operator, admin_operator):
    job = unknown_job(operator)
    job_mark_looked_at(job=job, user=operator, note="first")
    before = row_counts()

    with pytest.raises(ValidationError, match="op1 already looked at this job"):
        job_mark_looked_at(job=job, user=admin_operator, note="second")

    assert row_counts() == before
    assert JobReview.objects.get(job=job).note == "first"


def test_the_page_offers_the_mark_and_then_shows_who_looked_and_when(client, operator):
    job = unknown_job(operator)
    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'id="looked-at-form"' in page and "Mark as looked at" in page

    response = client.post(
        reverse("job_looked_at", args=[job.pk]), {"note": "<b>applied</b> on eu1"}, follow=True
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Marked as looked at." in page
    assert 'id="looked-at-form"' not in page
    review = JobReview.objects.get(job=job)
    assert f"op1 looked at this job on {moment(review.reviewed_at)}." in page
    assert "&lt;b&gt;applied&lt;/b&gt; on eu1" in page


def test_the_page_says_a_second_mark_was_refused(client, operator):
    job = unknown_job(operator)
    job_mark_looked_at(job=job, user=operator, note="first")
    client.force_login(operator)

    response = client.post(reverse("job_looked_at", args=[job.pk]), {"note": "again"}, follow=True)

    assert "op1 already looked at this job." in response.content.decode()
    assert JobReview.objects.get(job=job).note == "first"


def test_a_too_long_note_on_the_page_is_refused_with_its_field_error(client, operator):
    job = unknown_job(operator)
    client.force_login(operator)
    before = row_counts()

    response = client.post(reverse("job_looked_at", args=[job.pk]), {"note": "y" * 1001})

    assert response.status_code == 400
    assert "at most 1000 characters" in response.content.decode()
    assert row_counts() == before


def test_the_page_posts_are_refused_403_for_an_auditor_and_404_for_an_unseen_job(client, operator):
    job = unknown_job(operator)
    client.force_login(make_user("aud", "Auditors"))
    assert (
        'id="looked-at-form"'
        not in client.get(reverse("job_detail", args=[job.pk])).content.decode()
    )
    assert client.post(reverse("job_looked_at", args=[job.pk])).status_code == 403
    client.force_login(make_user("op2", "Operators"))
    assert client.post(reverse("job_looked_at", args=[job.pk])).status_code == 404
    assert not JobReview.objects.exists()


def test_a_job_that_is_not_unknown_shows_no_mark(client, operator):
    job = baker.make(Job, user=operator, action=1, status="FAILED")
    client.force_login(operator)

    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()

    assert 'id="job-review"' not in page


def test_the_count_of_unknown_jobs_nobody_looked_at(operator, admin_operator):
    looked, other = unknown_job(operator), unknown_job(admin_operator)
    unknown_job(operator)
    baker.make(Job, user=operator, action=1, status="FAILED")
    job_mark_looked_at(job=looked, user=operator)

    assert Job.objects.unknown_not_looked_at().count() == 2
    assert Job.objects.visible_to(operator).unknown_not_looked_at().count() == 1
    job_mark_looked_at(job=other, user=admin_operator)
    assert Job.objects.unknown_not_looked_at().count() == 1


def test_the_count_reads_the_status_index_and_probes_reviews_by_job(operator):
    unknown_job(operator)
    with CaptureQueriesContext(connection) as queries:
        Job.objects.unknown_not_looked_at().count()
    [sql] = [query["sql"] for query in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {'QUERY PLAN ' if connection.vendor == 'sqlite' else ''}{sql}")
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "job_status" in plan or "job_user_status" in plan or "job_failed" in plan, plan
    assert "SCAN jobs_jobreview" not in plan and "Seq Scan on jobs_jobreview" not in plan, plan
