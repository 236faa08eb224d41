"""What the operator pages share: finding a visible job, and putting service errors on forms."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode

from jobs.models import Job


def add_service_errors(form, exc: ValidationError, rename: dict[str, str] | None = None) -> None:
    """Put the service's errors next to the form's fields (hidden ones at the top).

    `rename` maps the service's argument names to the form's field names where they differ.
    """
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.message_dict.items():
        field = (rename or {}).get(name, name)
        visible = field in form.fields and not form.fields[field].widget.is_hidden
        form.add_error(field if visible else None, errors)


def jobs_page(jobs: list[Job]) -> str:
    """Where to go after submitting `jobs`: the job's page, or its batch's."""
    if len(jobs) == 1:
        return reverse("job_detail", args=[jobs[0].pk])
    return reverse("batch_detail", args=[jobs[0].batch_id])


def visible_job(request: HttpRequest, pk) -> Job:
    jobs = Job.objects.visible_to(request.user).select_related(
        "user", "cluster", "retry_of", "approval__approvers_group"
    )
    return get_object_or_404(jobs, pk=pk)


def queued(job: Job) -> bool:
    return job.status == Job.Status.IN_PROGRESS and job.started_at is None


def waits_for_approval(job: Job) -> bool:
    return job.status == Job.Status.PENDING_APPROVAL


def may_cancel(user, job: Job) -> bool:
    return job.user_id == user.pk or user.is_superuser


def customer_history_url(cid: str) -> str:
    return reverse("customer_history") + "?" + urlencode({"cid": cid})


def live_version(jobs, *extra) -> str:
    """A short digest of what a live region shows of these jobs (and `extra`): it changes
    whenever the region would, so that a poll can be answered 204 until then."""
    shown = [
        (job.pk, job.status, job.started_at, job.waiting_since, job.finished_at) for job in jobs
    ]
    return hashlib.sha256(repr([shown, extra]).encode()).hexdigest()[:16]
