"""The Content-Security-Policy in a real browser: no page, the admin's included, needs an
inline script or style, so the policy that forbids them breaks nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from model_bakery import baker

from audit.services import audit_record
from jobs.models import Job, JobCustomer
from tests.e2e import PASSWORD, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

COLLECT = """() => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile));
}"""


def test_no_page_breaks_the_content_security_policy(page, operator, cluster):
    admin = User.objects.create_superuser("root", password=PASSWORD)
    job = baker.make(
        Job, user=operator, cluster=cluster, action=1, status=Job.Status.FAILED, error_message="x"
    )
    JobCustomer.objects.create(job=job, cid="C1")
    audit_record(event="job.failed", job_id=job.pk, details={"a": 1})
    page.add_init_script(f"({COLLECT})()")
    sign_in(page, admin, next="/jobs/")
    pages = [
        "/",
        "/overview/",
        "/jobs/",
        f"/jobs/{job.pk}/",
        "/customers/?cid=C1",
        "/admin/",
        "/admin/jobs/failedjob/",
        "/admin/jobs/job/?status__exact=FAILED",
        f"/admin/jobs/job/{job.pk}/change/",
        "/admin/jobs/cluster/add/",
        "/admin/audit/auditentry/",
        "/admin/auth/user/",
    ]
    seen = {}
    for url in pages:
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        seen[url] = page.evaluate("window.__violations")
    assert {url: found for url, found in seen.items() if found} == {}
