"""The jobs list filtered by when jobs ended (the Overview's bars link to it): ISO 8601
moments, from inclusive and before exclusive, validated, kept across pages, shown as a filter
the user can remove, and read from an index."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from model_bakery import baker

from jobs.forms import JobFilterForm
from jobs.models import Job
from jobs.views.lists import JOBS_PER_PAGE

pytestmark = pytest.mark.django_db

HOUR = dt.datetime(2026, 12, 6, 14, tzinfo=dt.UTC)


def ended(user, at: dt.datetime, status: str = "FAILED") -> Job:
    return baker.make(Job, user=user, action=1, status=status, finished_at=at, created_at=at)


def listed(client, **params) -> tuple[int, str, set[str]]:
    response = client.get(reverse("job_list") + "?" + urlencode(params))
    page = response.content.decode()
    return response.status_code, page, {str(job.pk) for job in response.context["page"]}


def test_from_is_inclusive_and_before_is_exclusive(client, operator):
    first = ended(operator, HOUR)
    last = ended(operator, HOUR + dt.timedelta(minutes=59, seconds=59))
    ended(operator, HOUR - dt.timedelta(seconds=1))
    ended(operator, HOUR + dt.timedelta(hours=1))
    baker.make(Job, user=operator, action=1, status="IN_PROGRESS", finished_at=None)
    client.force_login(operator)

    _, _, jobs = listed(client, ended_from="2026-12-06T14:00:00Z", ended_to="2026-12-06T15:00:00Z")

    assert jobs == {str(first.pk), str(last.pk)}


def test_with_the_outcome_only_that_status_in_that_hour(client, operator):
    failed = ended(operator, HOUR + dt.timedelta(minutes=5), "FAILED")
    ended(operator, HOUR + dt.timedelta(minutes=5), "SUCCESS")
    client.force_login(operator)

    _, _, jobs = listed(
        client,
        status="FAILED",
        ended_from="2026-12-06T14:00:00Z",
        ended_to="2026-12-06T15:00:00Z",
    )

    assert jobs == {str(failed.pk)}


def test_either_bound_alone_and_an_offset_other_than_utc(client, operator):
    early, late = ended(operator, HOUR), ended(operator, HOUR + dt.timedelta(hours=3))
    client.force_login(operator)

    assert listed(client, ended_from="2026-12-06T16:00:00+01:00")[2] == {str(late.pk)}
    assert listed(client, ended_to="2026-12-06T15:00:00Z")[2] == {str(early.pk)}


def test_the_page_says_the_filter_is_active_and_links_to_the_list_without_it(client, operator):
    ended(operator, HOUR)
    client.force_login(operator)

    _, page, _ = listed(
        client,
        status="FAILED",
        ended_from="2026-12-06T14:00:00Z",
        ended_to="2026-12-06T15:00:00Z",
    )

    assert 'id="ended-filter"' in page
    assert '<time datetime="2026-12-06T14:00:00Z">2026-12-06 14:00:00 UTC</time>' in page
    assert '<time datetime="2026-12-06T15:00:00Z">2026-12-06 15:00:00 UTC</time>' in page
    assert 'href="/jobs/?status=FAILED" id="remove-ended-filter"' in page
    # Apply keeps it: the form carries it in hidden inputs.
    assert '<input type="hidden" name="ended_from" value="2026-12-06T14:00:00Z"' in page
    assert 'name="ended_to"' in page


def test_without_it_the_page_shows_no_active_filter(client, operator):
    client.force_login(operator)

    assert 'id="ended-filter"' not in listed(client, status="FAILED")[1]


def test_pagination_links_keep_it(client, operator):
    for minute in range(JOBS_PER_PAGE + 1):
        ended(operator, HOUR + dt.timedelta(minutes=minute % 60, seconds=minute // 60))
    ended(operator, HOUR + dt.timedelta(hours=2))
    client.force_login(operator)
    params = {"ended_from": "2026-12-06T14:00:00Z", "ended_to": "2026-12-06T15:00:00Z"}

    _, page, first = listed(client, **params)
    _, _, second = listed(client, **params, page=2)

    assert (
        "ended_from=2026-12-06T14%3A00%3A00Z&amp;ended_to=2026-12-06T15%3A00%3A00Z&amp;page=2"
        in page
    )
    assert len(first) == JOBS_PER_PAGE and len(second) == 1 and not first & second


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"ended_from": "2026-12-06T15:00:00Z", "ended_to": "2026-12-06T15:00:00Z"},
            "“Ended before” (2026-12-06T15:00:00+00:00) is not after “Ended from” "
            "(2026-12-06T15:00:00+00:00): no job could match.",
        ),
        (
            {"ended_from": "2026-12-06T16:00:00Z", "ended_to": "2026-12-06T15:00:00Z"},
            "is not after",
        ),
        ({"ended_from": "yesterday"}, "Ended from: Enter a valid date/time."),
        ({"ended_to": "2026-13-01T00:00:00Z"}, "Ended before: Enter a valid date/time."),
    ],
)
def test_bad_bounds_are_refused_with_a_message_and_no_job_listed(client, operator, params, message):
    ended(operator, HOUR)
    client.force_login(operator)

    status, page, jobs = listed(client, **params)

    assert status == 200 and jobs == set()
    assert message in page.replace("&#x27;", "'")
    assert 'role="alert"' in page
    assert 'id="ended-filter"' not in page


def test_hostile_input_is_escaped(client, operator):
    client.force_login(operator)

    _, page, _ = listed(client, ended_from='"><script>alert(1)</script>')

    assert "<script>alert(1)" not in page


def test_an_operator_still_sees_only_their_own_jobs(client, operator):
    mine = ended(operator, HOUR)
    ended(baker.make("auth.User", username="op2"), HOUR)
    client.force_login(operator)

    assert listed(client, ended_from="2026-12-06T14:00:00Z")[2] == {str(mine.pk)}


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A test table is tiny; on it PostgreSQL would rather read it all than any index.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return str(cursor.fetchall())


@pytest.mark.parametrize(
    ("status", "own", "index"),
    [
        ("FAILED", False, "job_status_finished_idx"),
        ("", False, "job_finished_idx"),
        ("", True, "job_user_finished_idx"),
    ],
)
def test_an_hour_is_counted_from_an_index_on_when_jobs_ended(operator, status, own, index):
    ended(operator, HOUR)
    form = JobFilterForm(
        {
            "status": status,
            "ended_from": "2026-12-06T14:00:00Z",
            "ended_to": "2026-12-06T15:00:00Z",
        },
        may_see_others=True,
    )
    assert form.is_valid(), form.errors
    jobs = Job.objects.visible_to(operator) if own else Job.objects.all()
    with CaptureQueriesContext(connection) as queries:
        form.filter(jobs).order_by().count()

    found = plan(queries.captured_queries[0]["sql"])
    # SQLite picks by the index's columns alone; PostgreSQL by cost, which on a test table of
    # one job ties between them: there, any index on when jobs ended, and no scan.
    if connection.vendor == "sqlite":
        assert index in found, found
    else:
        assert "finished_idx" in found and "Seq Scan" not in found, found
