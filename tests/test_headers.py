"""Headers: no cache keeps a page that shows jobs, a CSP on every page, and production's
HTTPS settings available through the environment."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from model_bakery import baker

from jobs.models import Job, JobCustomer
from tests.fresh_settings import ROOT, run_python


@pytest.fixture
def pages(operator, cluster):
    job = baker.make(Job, user=operator, cluster=cluster, action=1, batch_id=None)
    JobCustomer.objects.create(job=job, cid="C1")
    batch = baker.make(Job, user=operator, cluster=cluster, action=1, batch_id=uuid.uuid4())
    return [
        reverse("set_action"),
        reverse("job_list"),
        reverse("job_export"),
        reverse("job_detail", args=[job.pk]),
        reverse("job_detail", args=[job.pk]) + "?part=state",
        reverse("batch_detail", args=[batch.batch_id]),
        reverse("customer_history") + "?cid=C1",
    ]


def test_no_page_or_export_that_shows_jobs_is_cached(client, operator, pages):
    client.force_login(operator)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url


def test_every_page_forbids_inline_script_and_style(client, operator, pages):
    client.force_login(operator)
    for url in [*pages, reverse("login"), reverse("admin:login")]:
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy


def shipped_settings() -> dict[str, str]:
    """deploy/tmsdash.env as shipped, placeholders and all."""
    lines = (ROOT / "deploy" / "tmsdash.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


SHIPPED = shipped_settings()
# The production settings the README documents, with its placeholders filled in.
PRODUCTION = {
    **SHIPPED,
    "SECRET_KEY": "a-long-random-production-key-" + "x7Q2-9fLk-" * 5,
    "TMS_METRICS_TOKEN": "a-long-random-metrics-token-" + "p4Zw-" * 4,
}


def test_the_shipped_settings_mark_every_secret_as_a_placeholder():
    assert SHIPPED["SECRET_KEY"].startswith("replace-with-")
    assert SHIPPED["TMS_METRICS_TOKEN"].startswith("replace-with-")
    assert not any(value.startswith("replace-with-") for value in PRODUCTION.values())


@pytest.mark.parametrize("name", ["SECRET_KEY", "TMS_METRICS_TOKEN"])
def test_the_dashboard_refuses_to_start_with_a_placeholder_of_the_shipped_settings(name):
    result = run_python(["manage.py", "check"], {**PRODUCTION, name: SHIPPED[name]})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message == (
        f"tmsdash: The environment variable {name} is "
        "malformed: it still holds the placeholder of deploy/tmsdash.env; set a long random "
        'string, for example from python -c "import secrets; print(secrets.token_urlsafe(50))".'
    )
    assert "Traceback" not in result.stderr and SHIPPED[name] not in result.stderr


def test_check_deploy_reports_nothing_with_the_documented_production_settings():
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_them():
    result = run_python(
        ["manage.py", "check", "--deploy"], {"SECRET_KEY": PRODUCTION["SECRET_KEY"]}
    )
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout
