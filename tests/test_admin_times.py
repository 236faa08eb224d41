"""The admin's times have their seconds and say their zone (tmsdash/formats)."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from model_bakery import baker

from jobs.models import Job


def test_the_admins_job_lists_show_seconds_and_the_zone(admin_client, operator, cluster):
    created = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    baker.make(Job, user=operator, cluster=cluster, status="FAILED", created_at=created)
    for url in (reverse("admin:jobs_job_changelist"), reverse("admin:jobs_failedjob_changelist")):
        assert "2026-03-04 05:06:07 UTC" in admin_client.get(url).content.decode()
