"""What the operator pages share: finding a visible job, and putting service errors on forms."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import urlencode

from audit.services import client_ip
from jobs.models import Job
from jobs.services import NotGranted


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


def retried(request: HttpRequest, form, retry: Callable[..., list[Job]], done: str):
    """Run a retry service with a bound RetryForm's fields: the redirect to the new jobs' page,
    saying `done`, or None with the errors on the form."""
    if not form.is_valid():
        return None
    try:
        jobs = retry(
            user=request.user,
            token=form.cleaned_data.get("retry_token"),
            stored_credential=form.stored_credential,
            confirm_unknown=form.cleaned_data["confirm_unknown"],
            confirm_again=form.cleaned_data["confirm_again"],
            idempotency_key=form.cleaned_data["idempotency_key"],
            ip_address=client_ip(request),
        )
    except ValidationError as exc:
        add_service_errors(form, exc, rename={"token": "retry_token"})
        return None
    except NotGranted as exc:
        form.add_error(None, str(exc))
        return None
    messages.success(request, done)
    return redirect(jobs_page(jobs))
