"""A job's page: its state, its customers and timeline, and retrying or cancelling it, or
marking it as looked at when its outcome is unknown."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from audit.models import AuditEntry
from audit.services import client_ip
from jobs.badges import shown_status
from jobs.csvexport import customers_csv_response
from jobs.forms import JobReviewForm, RetryForm
from jobs.models import Job, JobCustomer, JobReview
from jobs.services import (
    job_cancel,
    job_mark_looked_at,
    job_retry,
    job_retry_preview,
    may_mark_looked_at,
)
from jobs.views.common import (
    live_version,
    may_cancel,
    queued,
    visible_job,
    waits_for_approval,
)
from jobs.views.retrying import Retrying, retry_step

CUSTOMERS_PER_PAGE = 100


def queue_position(job: Job) -> int | None:
    """The job's place among the queued jobs no cluster limit holds back (1: next), or None
    when it is not queued or waits for its cluster's free call."""
    if not queued(job) or job.waiting_since:
        return None
    ahead = Job.objects.in_progress().filter(
        started_at__isnull=True, waiting_since__isnull=True, created_at__lt=job.created_at
    )
    return ahead.count() + 1


def _customers(request: HttpRequest, job: Job) -> dict:
    failed_only = bool(request.GET.get("failed"))
    rows = job.customers.order_by("pk")
    if failed_only:
        rows = rows.filter(outcome=JobCustomer.Outcome.FAILED)
    page = Paginator(rows, CUSTOMERS_PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({"failed": 1}) if failed_only else ""
    refresh = {"part": "customers", "page": page.number, **({"failed": 1} if failed_only else {})}
    return {
        "customers": page,
        "failed_only": failed_only,
        "customers_query": query,
        "customers_refresh_url": f"{reverse('job_detail', args=[job.pk])}?{urlencode(refresh)}",
    }


def _review(request: HttpRequest, job: Job, form: JobReviewForm | None) -> dict:
    """Who looked at an UNKNOWN job, or the form to say one did, for whoever may."""
    if job.status != Job.Status.UNKNOWN:
        return {"review": None, "review_form": None}
    review = JobReview.objects.filter(job=job).select_related("reviewed_by").first()
    may = review is None and may_mark_looked_at(request.user, job)
    return {"review": review, "review_form": (form or JobReviewForm()) if may else None}


def _job_context(
    request: HttpRequest,
    job: Job,
    retry_form: RetryForm | None = None,
    review_form: JobReviewForm | None = None,
) -> dict:
    can_retry = job.status in (Job.Status.FAILED, Job.Status.UNKNOWN) and request.user.has_perm(
        "jobs.run_set_action"
    )
    position = queue_position(job)
    shown = shown_status(job)
    timeline = list(AuditEntry.objects.filter(job_id=job.pk).order_by("created_at", "id"))
    now = timezone.now()
    past_deadline = waits_for_approval(job) and job.approval.expires_at <= now
    return {
        "job": job,
        # A job waiting for approval is followed too: its page changes when it is decided.
        "live": job.status in (Job.Status.IN_PROGRESS, Job.Status.PENDING_APPROVAL),
        "shown": shown,
        "title": f"{shown} · Job {str(job.pk)[:8]} · TMS Dashboard",
        "position": position,
        "version": live_version([job], position, past_deadline),
        "past_deadline": past_deadline,
        # Past its deadline a request can no longer be withdrawn: it ends EXPIRED.
        "can_cancel": (queued(job) or (waits_for_approval(job) and not past_deadline))
        and may_cancel(request.user, job),
        "timeline": timeline,
        "call_ran": _call_ran(job, timeline),
        "retries": job.retries.order_by("created_at"),
        "retry_form": retry_form or (RetryForm(user=request.user, job=job) if can_retry else None),
        "now": now,
        **_review(request, job, review_form),
        **_customers(request, job),
    }


def _call_ran(job: Job, timeline: list[AuditEntry]) -> timedelta | None:
    """How long an UNKNOWN job's call had run when its worker stopped, when that is known
    (housekeeping recorded it from the worker's last heartbeat)."""
    for entry in timeline:
        if entry.event == AuditEntry.Event.JOB_UNKNOWN and "call_ran_ms" in entry.details:
            return timedelta(milliseconds=entry.details["call_ran_ms"])
    return None


PARTS = {
    "state": "jobs/_job_state.html",
    "answer": "jobs/_cluster_answer.html",
    "customers": "jobs/_job_customers.html",
    "timeline": "jobs/_job_timeline.html",
}


@never_cache
@login_required
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    """The job's page; ?part= one of its live regions (htmx asks for them)."""
    job = visible_job(request, pk)
    context = _job_context(request, job)
    part = request.GET.get("part")
    if part not in PARTS:
        return render(request, "jobs/job_detail.html", context)
    if part == "state":
        if request.GET.get("v") == context["version"]:
            return HttpResponse(status=204)
        response = render(request, PARTS[part], context)
        # The other regions refresh on these: the timeline on every change, the customers once.
        trigger_client_event(response, "job-changed")
        if not context["live"]:
            trigger_client_event(response, "job-ended")
        return response
    return render(request, PARTS[part], context)


@never_cache
@login_required
def job_customers_export(request: HttpRequest, pk) -> HttpResponse:
    job = visible_job(request, pk)
    return customers_csv_response(job, job.customers.order_by("pk").iterator(chunk_size=2000))


@never_cache
@sensitive_post_parameters("retry_token", "seal")
@login_required
@require_POST
@permission_required("jobs.run_set_action", raise_exception=True)
def job_retry_view(request: HttpRequest, pk) -> HttpResponse:
    """Review a retry of the job, or send a reviewed one (see jobs.views.retrying)."""
    job = visible_job(request, pk)
    retrying = Retrying(
        job=job,
        preview=partial(job_retry_preview, job=job),
        send=partial(job_retry, job=job),
        back_url=reverse("job_detail", args=[job.pk]),
        retried=f"job {job.pk}",
        done=f"Retry of job {job.pk} submitted.",
    )
    response, form = retry_step(request, retrying)
    if response is not None:
        return response
    return render(request, "jobs/job_detail.html", _job_context(request, job, form), status=400)


def cancel_jobs(request: HttpRequest, jobs: list[Job]) -> None:
    """Cancel these jobs and say what happened; PermissionDenied (403) when the user may not."""
    report = job_cancel(
        job_ids=[job.pk for job in jobs], user=request.user, ip_address=client_ip(request)
    )
    if report.cancelled:
        messages.success(
            request,
            f"Cancelled {len(report.cancelled)} job(s) before they were sent to the cluster.",
        )
    for job_id, reason in report.refused.items():
        messages.error(request, f"Job {job_id} was not cancelled. {reason}")


@never_cache
@login_required
@require_POST
def job_cancel_view(request: HttpRequest, pk) -> HttpResponse:
    job = visible_job(request, pk)
    cancel_jobs(request, [job])
    return redirect("job_detail", pk=job.pk)


@never_cache
@login_required
@require_POST
def job_looked_at_view(request: HttpRequest, pk) -> HttpResponse:
    """Mark the job as looked at (403 for whoever may not; see jobs.services.reviews)."""
    job = visible_job(request, pk)
    form = JobReviewForm(request.POST)
    if not form.is_valid():
        context = _job_context(request, job, review_form=form)
        return render(request, "jobs/job_detail.html", context, status=400)
    try:
        job_mark_looked_at(
            job=job,
            user=request.user,
            note=form.cleaned_data["note"],
            ip_address=client_ip(request),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Marked as looked at.")
    return redirect("job_detail", pk=job.pk)
