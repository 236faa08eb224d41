"""The audit log page in a real browser at 1,280 and 390 px: filters beside the entries on a
wide screen and above them on a phone, details opened without script, no axe violation with or
without a filter error, and nothing scrolls the page sideways on the phone."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEntry
from audit.services import audit_bulk_append
from jobs.models import Job
from tests.e2e import make_job, sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import assert_no_sideways_scroll

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def entries(operator, cluster):
    job = make_job(operator, cluster, Job.Status.FAILED)
    at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    audit_bulk_append(
        [
            AuditEntry(event="job.failed", job_id=job.pk, actor_username="", created_at=at),
            AuditEntry(
                event="cluster.changed",
                actor_username="admin-with-a-rather-long-username",
                ip_address="2001:db8::1",
                created_at=at + dt.timedelta(minutes=1),
                details={
                    "cluster": "east",
                    "before": {"url": "http://cluster-east.example.internal:8443/api"},
                    "after": {"url": "http://cluster-east-2.example.internal:8443/api"},
                },
            ),
        ]
    )
    return job


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_the_audit_page_is_accessible_and_laid_out_for_the_width(
    page: Page, auditor, entries, viewport
):
    page.set_viewport_size(viewport)
    sign_in(page, auditor, next="/audit/")
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(page.locator("#audit-table tbody tr[data-entry-id]")).to_have_count(3)
    filters = page.locator("#audit-filter").bounding_box()
    entries_box = page.locator(".audit-entries").bounding_box()
    assert filters and entries_box
    if viewport is WIDE:
        assert filters["x"] + filters["width"] <= entries_box["x"]
        assert abs(filters["y"] - entries_box["y"]) < 1
    else:
        assert filters["y"] + filters["height"] <= entries_box["y"]
        assert_no_sideways_scroll(page)
    changed = page.locator("#audit-table tr", has_text="Cluster changed")
    changed.locator("summary").click()
    expect(changed.locator(".audit-changes")).to_contain_text("cluster-east-2")
    expect(page.locator(f"a[href='/jobs/{entries.pk}/']")).to_be_visible()
    assert_accessible(page)
    if viewport is PHONE:
        assert_no_sideways_scroll(page)

    page.goto("/audit/?event=job.exploded&created_from=2026-02-30")
    expect(page.locator("[data-field=event] .field-error")).to_be_visible()
    expect(page.locator("[data-field=created_from] .field-error")).to_be_visible()
    assert_accessible(page)
