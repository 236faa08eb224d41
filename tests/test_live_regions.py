"""The live regions of the operator pages (htmx): each is answered 204 while what it shows is
unchanged, and replaced when it changed; a signed-out poll is a 401, never the sign-in page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobCustomer
from jobs.services import job_interrupted, job_reap_stale, job_submit
from jobs.templatetags.jobs_tags import ordinal_place, when
from tests.helpers import TOKEN, make_user

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def submit(user, cluster, cids="C1") -> Job:
    [job] = job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)
    return job


def state(client, job: Job, version: str = "") -> object:
    url = reverse("job_detail", args=[job.pk]) + f"?part=state&v={version}"
    return client.get(url, **HTMX)


def version_of(response) -> str:
    content = response.content.decode()
    return content.split("part=state&amp;v=")[1].split('"')[0]


def test_the_job_state_is_204_until_it_changes_then_replaced_and_announced(
    as_operator, operator, cluster
):
    job = submit(operator, cluster)
    first = state(as_operator, job)
    assert first.status_code == 200
    assert 'data-status="IN_PROGRESS"' in first.content.decode()
    assert ">QUEUED</span>" in first.content.decode()
    version = version_of(first)
    assert state(as_operator, job, version).status_code == 204

    Job.objects.filter(pk=job.pk).update(started_at=timezone.now())
    running = state(as_operator, job, version)
    assert running.status_code == 200
    assert ">RUNNING</span>" in running.content.decode()
    assert 'data-title="RUNNING · Job' in running.content.decode()
    assert json.loads(running["HX-Trigger"]).keys() == {"job-changed"}

    Job.objects.filter(pk=job.pk).update(status="SUCCESS", finished_at=timezone.now())
    ended = state(as_operator, job, version_of(running))
    content = ended.content.decode()
    assert ended.status_code == 200
    assert "hx-trigger" not in content, "an ended job's state stops asking"
    assert 'data-announce="Job ' in content and ' is SUCCESS."' in content
    assert json.loads(ended["HX-Trigger"]).keys() == {"job-changed", "job-ended"}


def test_queued_jobs_show_their_place_and_a_held_one_waits_for_the_cluster(
    as_operator, operator, cluster
):
    jobs = [submit(operator, cluster, cids=f"C{n}") for n in range(3)]
    content = as_operator.get(reverse("job_detail", args=[jobs[2].pk])).content.decode()
    assert "3rd in the queue" in content
    Job.objects.filter(pk=jobs[0].pk).update(started_at=timezone.now())
    content = as_operator.get(reverse("job_detail", args=[jobs[2].pk])).content.decode()
    assert "2nd in the queue" in content
    Job.objects.filter(pk=jobs[2].pk).update(waiting_since=timezone.now())
    content = as_operator.get(reverse("job_detail", args=[jobs[2].pk])).content.decode()
    assert "waiting for the cluster" in content
    assert "in the queue" not in content


def test_the_customers_region_keeps_the_page_and_filter_it_was_on(as_operator, operator, cluster):
    job = submit(operator, cluster, cids=" ".join(f"C{n:03}" for n in range(150)))
    url = reverse("job_detail", args=[job.pk])
    content = as_operator.get(url + "?page=2&failed=1").content.decode()
    assert 'hx-trigger="job-ended from:body"' in content
    assert f"{url}?part=customers&amp;page=2&amp;failed=1" not in content  # no customer failed
    assert f"{url}?part=customers&amp;page=1&amp;failed=1" in content
    content = as_operator.get(url + "?page=2").content.decode()
    assert f"{url}?part=customers&amp;page=2" in content
    region = as_operator.get(url + "?part=customers&page=2", **HTMX).content.decode()
    assert region.lstrip().startswith('<section class="card" id="job-customers-region"')
    assert "C100" in region and "C099" not in region


def test_only_failed_customers_and_their_outcomes_as_csv(as_operator, operator, cluster):
    job = submit(operator, cluster, cids="C1 C2 C3")
    JobCustomer.objects.filter(job=job, cid="C2").update(outcome="FAILED", message="no such")
    JobCustomer.objects.filter(job=job, cid="C3").update(message="=HYPERLINK(1)")
    JobCustomer.objects.filter(job=job, cid="C1").update(outcome="SUCCESS")
    Job.objects.filter(pk=job.pk).update(status="FAILED", finished_at=timezone.now())
    url = reverse("job_detail", args=[job.pk])
    failed = as_operator.get(url + "?failed=1").content.decode()
    assert ">C2</a>" in failed and ">C1</a>" not in failed and "no such" in failed
    assert "hx-get" not in failed, "an ended job's page does not poll"

    response = as_operator.get(reverse("job_customers_export", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["customer id", "outcome", "message"],
        ["C1", "SUCCESS", ""],
        ["C2", "FAILED", "no such"],
        ["C3", "", "'=HYPERLINK(1)"],
    ]


def test_another_operators_job_customers_are_not_exported(client, operator, cluster):
    job = submit(operator, cluster)
    client.force_login(make_user("op2", "Operators"))
    assert client.get(reverse("job_customers_export", args=[job.pk])).status_code == 404


def test_a_signed_out_poll_is_401_and_a_page_load_still_redirects(client, operator, cluster):
    job = submit(operator, cluster)
    assert state(client, job).status_code == 401
    page = client.get(reverse("job_detail", args=[job.pk]))
    assert page.status_code == 302 and page.url.startswith(reverse("login"))


@pytest.mark.parametrize(
    ("url_name", "part", "marker"),
    [("job_list", "rows", "part=rows&amp;v="), ("recent_jobs", None, "?v=")],
)
def test_lists_of_jobs_are_204_while_nothing_they_show_changed(
    as_operator, operator, cluster, url_name, part, marker
):
    job = submit(operator, cluster)
    url = reverse(url_name) + (f"?part={part}&" if part else "?")
    content = as_operator.get(url, **HTMX).content.decode()
    version = content.split(marker)[1].split('"')[0]
    assert as_operator.get(url + f"v={version}", **HTMX).status_code == 204
    Job.objects.filter(pk=job.pk).update(status="FAILED", finished_at=timezone.now())
    changed = as_operator.get(url + f"v={version}", **HTMX)
    assert changed.status_code == 200
    assert 'data-status="FAILED"' in changed.content.decode()
    assert "hx-get" not in changed.content.decode(), "nothing left in progress: no polling"


def test_the_batch_state_is_204_until_a_part_changes(as_operator, operator, cluster):
    cluster.max_cids_per_request = 1
    cluster.save()
    first, second = job_submit(user=operator, action=1, cluster=cluster, cids="A B", token=TOKEN)
    url = reverse("batch_detail", args=[first.batch_id]) + "?part=state&v="
    content = as_operator.get(url, **HTMX).content.decode()
    assert 'data-title="0/2 ended · Batch' in content
    version = content.split("part=state&amp;v=")[1].split('"')[0]
    assert as_operator.get(url + version, **HTMX).status_code == 204
    Job.objects.filter(pk=second.pk).update(status="FAILED", finished_at=timezone.now())
    changed = as_operator.get(url + version, **HTMX).content.decode()
    assert 'data-title="1/2 ended, 1 FAILED · Batch' in changed


def test_times_are_in_utc_and_say_so():
    moment = dt.datetime(2026, 1, 2, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    assert when(moment) == '<time datetime="2026-01-02T01:05:06Z">2026-01-02 01:05:06 UTC</time>'
    assert when(None) == "—"


@pytest.mark.parametrize(
    ("number", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (22, "22nd")]
)
def test_places_in_the_queue_read_as_ordinals(number, text):
    assert ordinal_place(number) == text


def test_an_unknown_job_says_how_long_its_call_had_run_not_how_long_the_reaper_took(
    as_operator, operator, cluster
):
    job = submit(operator, cluster)
    started = timezone.now() - dt.timedelta(minutes=10)
    Job.objects.filter(pk=job.pk).update(started_at=started)
    job_interrupted(job_id=job.pk, last_seen=started + dt.timedelta(seconds=4, milliseconds=250))
    content = as_operator.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "the call had run 4.250 s when its worker stopped" in content

    reaped = submit(operator, cluster, cids="C2")
    Job.objects.filter(pk=reaped.pk).update(started_at=started)
    assert job_reap_stale().unknown == [reaped.pk]
    content = as_operator.get(reverse("job_detail", args=[reaped.pk])).content.decode()
    assert f"the call had run at most {cluster.timeout_seconds} s (its timeout)" in content
