"""The cluster's answer on a job page, in a real browser: it appears when the job ends, its
markup shows as text and never runs, and it passes axe at 1,280 and 390 px without scrolling
the page sideways."""

from __future__ import annotations

import pytest
from model_bakery import baker
from playwright.sync_api import Page, expect

from jobs.models import Cluster
from jobs.services import job_run, job_submit
from tests.e2e import sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import PHONE, assert_no_sideways_scroll
from tests.helpers import TOKEN
from tests.servers import LoopbackServer, answer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAGE = (
    "<html><body><h1>Down for maintenance</h1>"
    "<script>window.answerRan = true</script>"
    f"<p>token {TOKEN} refused; a line long enough to be wider than a phone's screen, "
    f"{'x' * 300}</p></body></html>"
)


def test_the_answer_appears_when_the_job_ends_as_text_and_accessible(page: Page, operator):
    with LoopbackServer(answer(200, PAGE, content_type="text/html; charset=utf-8")) as server:
        cluster = baker.make(Cluster, name="html", base_url=server.url, is_active=True)
        [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
        sign_in(page, operator, next=f"/jobs/{job.pk}/")
        expect(page.locator("#cluster-answer")).to_be_hidden()
        job_run(job_id=job.pk)

    body = page.locator("#cluster-answer-body")
    expect(body).to_be_visible()
    expect(page.locator("#cluster-answer-status")).to_have_text("200")
    expect(page.locator("#cluster-answer-content-type")).to_have_text("text/html; charset=utf-8")
    expect(body).to_contain_text("<script>window.answerRan = true</script>")
    expect(body).to_contain_text("token [redacted] refused")
    assert TOKEN not in page.content()
    assert page.evaluate("window.answerRan") is None
    assert_accessible(page)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(body).to_be_visible()
    assert body.evaluate("pre => pre.scrollWidth > pre.clientWidth"), "the body fits"
    assert_no_sideways_scroll(page)
    assert_accessible(page)
