"""A batch's page: the parts one submit split into, their progress, and cancelling them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from jobs.models import Job
from jobs.views.common import live_version, may_cancel, queued
from jobs.views.job import cancel_jobs


def _batch_end(jobs: list[Job]):
    if any(job.finished_at is None for job in jobs):
        return timezone.now()
    return max(job.finished_at for job in jobs)


def _title(batch_id, parts: int, ended: int, failed: int) -> str:
    state = f"{ended}/{parts} ended" if ended < parts else "ENDED"
    if failed:
        state += f", {failed} FAILED"
    return f"{state} · Batch {str(batch_id)[:8]} · TMS Dashboard"


@never_cache
@login_required
def batch_detail(request: HttpRequest, batch_id) -> HttpResponse:
    jobs = list(
        Job.objects.visible_to(request.user)
        .filter(batch_id=batch_id)
        .select_related("user", "cluster")
        .order_by("batch_seq")
    )
    if not jobs:
        raise Http404("No such batch.")
    counts = {status: 0 for status in Job.Status.values}
    for job in jobs:
        counts[job.status] += 1
    ended = len(jobs) - counts[Job.Status.IN_PROGRESS]
    queued_count = sum(1 for job in jobs if queued(job))
    started = min(job.created_at for job in jobs)
    context = {
        "batch_id": batch_id,
        "jobs": jobs,
        "counts": counts,
        "queued_count": queued_count,
        "running_count": counts[Job.Status.IN_PROGRESS] - queued_count,
        "ended": ended,
        "live": ended < len(jobs),
        "title": _title(batch_id, len(jobs), ended, counts[Job.Status.FAILED]),
        "version": live_version(jobs),
        "customers": sum(job.customer_count for job in jobs),
        "customers_ended": sum(
            j.customer_count for j in jobs if j.status != Job.Status.IN_PROGRESS
        ),
        "started": started,
        # From the submit to the last part's end, or to now while parts are in progress.
        "elapsed": _batch_end(jobs) - started,
        "can_cancel": any(queued(job) and may_cancel(request.user, job) for job in jobs),
    }
    if request.GET.get("part") != "state":
        return render(request, "jobs/batch_detail.html", context)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    return render(request, "jobs/_batch_state.html", context)


@never_cache
@login_required
@require_POST
def batch_cancel_view(request: HttpRequest, batch_id) -> HttpResponse:
    """Cancel every part of the batch still queued."""
    jobs = list(Job.objects.visible_to(request.user).filter(batch_id=batch_id))
    if not jobs:
        raise Http404("No such batch.")
    to_cancel = [job for job in jobs if queued(job)]
    if not to_cancel:
        messages.error(request, "No part of this batch is still queued: nothing was cancelled.")
    else:
        cancel_jobs(request, to_cancel)
    return redirect("batch_detail", batch_id=batch_id)
