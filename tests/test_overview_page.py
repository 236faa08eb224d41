"""The Overview page: everyone's numbers for those who may see every job, an operator's own
for them, the figures of now, the drill-down links, the live region's 204 while nothing
changed, and where a sign-in lands."""

from __future__ import annotations

import re
import time

import pytest
from model_bakery import baker

from jobs.models import Job
from jobs.services import job_submit
from tests.helpers import TOKEN, make_user, row_counts

BAD_TOKEN = "bad-token"


@pytest.fixture
def auditor(db):
    return make_user("aud1", "Auditors", is_staff=True)


@pytest.fixture
def ran(operator, cluster, run_queued_tasks):
    """Submit and run jobs as a worker would: two succeed, one fails (the cluster refuses
    its token)."""

    def ran(user=operator, *, token: str = TOKEN, cids: str = "C1") -> Job:
        [job] = job_submit(user=user, action="PE-Enable", cluster=cluster, cids=cids, token=token)
        run_queued_tasks()
        job.refresh_from_db()
        return job

    return ran


def totals(response) -> dict[str, int]:
    totals: dict[str, int] = {}
    for b in response.context["stats"].bins:
        for key, count in b.counts.items():
            totals[key] = totals.get(key, 0) + count
    return totals


def test_an_auditor_sees_everyones_jobs_by_outcome_with_links_to_them(
    client, auditor, ran, cluster
):
    ran(cids="C1")
    ran(cids="C2")
    failed = ran(cids="C3", token=BAD_TOKEN)
    assert failed.status == Job.Status.FAILED
    client.force_login(auditor)

    page = client.get("/overview/")

    assert page.status_code == 200
    assert totals(page) == {
        "SUCCESS": 2,
        "FAILED": 1,
        "UNKNOWN": 0,
        "CANCELLED": 0,
        "DENIED": 0,
        "EXPIRED": 0,
    }
    html = page.content.decode()
    assert "Everyone's jobs" in html
    [link] = re.findall(r'href="(/jobs/\?status=FAILED&amp;ended_from=[^"]+)"', html)
    jobs = client.get(link.replace("&amp;", "&"))
    assert [job.pk for job in jobs.context["page"]] == [failed.pk]
    rates = page.context["stats"].failures
    assert [(f.cluster_name, f.sent, f.failed) for f in rates] == [(cluster.name, 3, 1)]
    assert "Call time on eu1" in html


def test_an_operator_sees_their_own_jobs_only(client, operator, ran):
    other = make_user("op2", "Operators")
    ran(cids="C1")
    ran(other, cids="C2")
    ran(other, cids="C3")
    client.force_login(operator)

    page = client.get("/overview/")

    assert totals(page)["SUCCESS"] == 1
    assert "Your jobs" in page.content.decode()


def test_the_live_region_answers_204_until_a_job_ends(client, auditor, ran):
    ran(cids="C1")
    client.force_login(auditor)
    version = client.get("/overview/").context["version"]

    assert client.get("/overview/", {"part": "live", "v": version}).status_code == 204
    ran(cids="C2")
    changed = client.get("/overview/", {"part": "live", "v": version})
    assert changed.status_code == 200
    assert changed.context["version"] != version
    assert 'id="overview-live"' in changed.content.decode()


def test_an_unknown_job_nobody_looked_at_is_flagged(client, auditor, operator, cluster):
    client.force_login(auditor)
    assert "needs a look" not in client.get("/overview/").content.decode()

    baker.make(Job, user=operator, cluster=cluster, action=3, status=Job.Status.UNKNOWN)
    page = client.get("/overview/")

    assert page.context["now"].unknown_not_looked_at == 1
    assert "needs a look" in page.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"period": "forever"},
        {"cluster": "abc"},
        {"cluster": "99999999999999999999999"},
        {"action": "99"},
        {"action": "x\x00"},
        {"part": "live", "v": "<script>"},
    ],
)
def test_odd_filters_show_the_default_and_write_nothing(client, auditor, query):
    client.force_login(auditor)
    before = row_counts()
    page = client.get("/overview/", query)
    assert page.status_code in (200, 400)
    assert row_counts() == before


def test_a_job_waiting_in_the_queue_does_not_change_the_live_region_by_itself(
    client, auditor, operator, cluster
):
    [queued] = job_submit(
        user=operator, action="PE-Enable", cluster=cluster, cids="C9", token=TOKEN
    )
    client.force_login(auditor)
    page = client.get("/overview/")
    assert page.context["now"].queued == 1
    assert page.context["now"].oldest_queued_since == queued.created_at

    # Time passes (the oldest job's age grows) and nothing else happens: nothing to redraw.
    time.sleep(0.2)
    live = client.get("/overview/", {"part": "live", "v": page.context["version"]})
    assert live.status_code == 204
