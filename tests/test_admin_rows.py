"""The job lists' rows in the admin, as Django would write them."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from jobs.models import FailedJob, Job
from tests.admin_helpers import make_job, make_superuser


@pytest.fixture
def admin_user(db):
    return make_superuser()


@pytest.mark.parametrize("model", [Job, FailedJob])
def test_action_checkbox_is_djangos_markup(admin_client, operator, model):
    job = make_job(user=operator, status=Job.Status.FAILED)
    model_admin = admin.site._registry[model]
    ours = model_admin.action_checkbox(job)
    assert ours == admin.ModelAdmin.action_checkbox(model_admin, job)
    url = reverse(f"admin:jobs_{model._meta.model_name}_changelist")
    assert ours in admin_client.get(url).content.decode()


def test_ticked_row_is_exported(admin_client, operator):
    job = make_job(user=operator)
    make_job(user=operator)
    response = admin_client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "export_csv", "_selected_action": [job.pk], "index": 0},
    )
    rows = b"".join(response.streaming_content).decode().splitlines()
    assert len(rows) == 2 and str(job.pk) in rows[1]
