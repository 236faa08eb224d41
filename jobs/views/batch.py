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
from jobs.views.common import may_cancel, queued
from jobs.views.job import cancel_jobs


def _batch_end(jobs: list[Job]):
    if any(job.finished_at is None for job in jobs):
        return timezone.now()
    return max(job.finished_at for job in jobs)


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
    context = {
        "batch_id": batch_id,
        "jobs": jobs,
        "counts": counts,
        "ended": len(jobs) - counts[Job.Status.IN_PROGRESS],
        "customers": sum(job.customer_count for job in jobs),
        "customers_ended": sum(
            j.customer_count for j in jobs if j.status != Job.Status.IN_PROGRESS
        ),
        # From the submit to the last part's end, or to now while parts are in progress.
        "elapsed": _batch_end(jobs) - min(job.created_at for job in jobs),
        "can_cancel": any(queued(job) and may_cancel(request.user, job) for job in jobs),
    }
    template = "jobs/_batch_live.html" if request.GET.get("partial") else "jobs/batch_detail.html"
    return render(request, template, context)


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
