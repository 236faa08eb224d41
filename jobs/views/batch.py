"""A batch's page: the parts one submit split into, their progress, cancelling the queued
parts and retrying the failed ones."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from jobs.forms import RetryForm
from jobs.models import Job
from jobs.services import batch_retry, batch_retry_preview
from jobs.views.common import live_version, may_cancel, queued, waits_for_approval
from jobs.views.job import cancel_jobs
from jobs.views.retrying import Retrying, retry_step


def _batch_end(jobs: list[Job]):
    if any(job.finished_at is None for job in jobs):
        return timezone.now()
    return max(job.finished_at for job in jobs)


NOT_ENDED = {Job.Status.IN_PROGRESS, Job.Status.PENDING_APPROVAL}


def _title(batch_id, parts: int, ended: int, failed: int) -> str:
    state = f"{ended}/{parts} ended" if ended < parts else "ENDED"
    if failed:
        state += f", {failed} FAILED"
    return f"{state} · Batch {str(batch_id)[:8]} · TMS Dashboard"


def _batch_jobs(request: HttpRequest, batch_id) -> list[Job]:
    jobs = list(
        Job.objects.visible_to(request.user)
        .filter(batch_id=batch_id)
        .select_related("user", "cluster", "approval__approvers_group")
        .order_by("batch_seq")
    )
    if not jobs:
        raise Http404("No such batch.")
    return jobs


def _batch_context(
    request: HttpRequest, batch_id, jobs: list[Job], retry_form: RetryForm | None = None
) -> dict:
    counts = {status: 0 for status in Job.Status.values}
    for job in jobs:
        counts[job.status] += 1
    ended = len(jobs) - counts[Job.Status.IN_PROGRESS] - counts[Job.Status.PENDING_APPROVAL]
    live = ended < len(jobs)
    queued_count = sum(1 for job in jobs if queued(job))
    started = min(job.created_at for job in jobs)
    failed = [job for job in jobs if job.status in (Job.Status.FAILED, Job.Status.UNKNOWN)]
    # Offered once every part has ended, so that no live update replaces a half-typed token.
    can_retry = not live and failed and request.user.has_perm("jobs.run_set_action")
    return {
        "batch_id": batch_id,
        "jobs": jobs,
        "counts": counts,
        "queued_count": queued_count,
        "running_count": counts[Job.Status.IN_PROGRESS] - queued_count,
        "ended": ended,
        "live": live,
        "title": _title(batch_id, len(jobs), ended, counts[Job.Status.FAILED]),
        "version": live_version(jobs),
        "customers": sum(job.customer_count for job in jobs),
        "customers_ended": sum(j.customer_count for j in jobs if j.status not in NOT_ENDED),
        "started": started,
        # From the submit to the last part's end, or to now while parts are in progress.
        "elapsed": _batch_end(jobs) - started,
        "can_cancel": any(_cancellable(job) and may_cancel(request.user, job) for job in jobs),
        "approval": jobs[0].approval,
        "waits_for_approval": counts[Job.Status.PENDING_APPROVAL] > 0,
        "failed_parts": failed,
        "any_unknown": counts[Job.Status.UNKNOWN] > 0,
        "retried_parts": _retried(failed),
        "retry_form": retry_form
        or (RetryForm(user=request.user, job=failed[0]) if can_retry else None),
    }


def _cancellable(job: Job) -> bool:
    """Not sent yet: queued, or waiting for approval before its deadline (cancelling
    withdraws the request)."""
    return queued(job) or (waits_for_approval(job) and job.approval.expires_at > timezone.now())


def _retried(parts: list[Job]) -> list[Job]:
    """Those of `parts` that were already retried: one query, whatever their number."""
    retried = set(
        Job.objects.filter(retry_of__in=parts).values_list("retry_of_id", flat=True).distinct()
    )
    return [job for job in parts if job.pk in retried]


PARTS = {"state": "jobs/_batch_state.html", "retry": "jobs/_batch_retry.html"}


@never_cache
@login_required
def batch_detail(request: HttpRequest, batch_id) -> HttpResponse:
    """The batch's page; ?part= one of its live regions (htmx asks for them)."""
    context = _batch_context(request, batch_id, _batch_jobs(request, batch_id))
    part = request.GET.get("part")
    if part not in PARTS:
        return render(request, "jobs/batch_detail.html", context)
    if part == "state" and request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    response = render(request, PARTS[part], context)
    if part == "state" and not context["live"]:
        trigger_client_event(response, "batch-ended")
    return response


@never_cache
@sensitive_post_parameters("retry_token", "seal")
@login_required
@require_POST
@permission_required("jobs.run_set_action", raise_exception=True)
def batch_retry_view(request: HttpRequest, batch_id) -> HttpResponse:
    """Review a retry of the batch's failed and unknown parts as one new batch, or send a
    reviewed one (see jobs.views.retrying)."""
    jobs = _batch_jobs(request, batch_id)
    failed = [job for job in jobs if job.status in (Job.Status.FAILED, Job.Status.UNKNOWN)]
    retrying = Retrying(
        job=failed[0] if failed else None,
        preview=partial(batch_retry_preview, batch_id=batch_id),
        send=partial(batch_retry, batch_id=batch_id),
        back_url=reverse("batch_detail", args=[batch_id]),
        retried=f"{len(failed)} part{'s' if len(failed) != 1 else ''} of batch {batch_id}",
        done=f"Retry of the failed parts of batch {batch_id} submitted.",
    )
    response, form = retry_step(request, retrying)
    if response is not None:
        return response
    context = _batch_context(request, batch_id, jobs, form)
    return render(request, "jobs/batch_detail.html", context, status=400)


@never_cache
@login_required
@require_POST
def batch_cancel_view(request: HttpRequest, batch_id) -> HttpResponse:
    """Cancel every part of the batch still queued."""
    jobs = _batch_jobs(request, batch_id)
    to_cancel = [job for job in jobs if _cancellable(job)]
    if not to_cancel:
        messages.error(
            request,
            "No part of this batch is still queued or waiting for approval: nothing was cancelled.",
        )
    else:
        cancel_jobs(request, to_cancel)
    return redirect("batch_detail", batch_id=batch_id)
