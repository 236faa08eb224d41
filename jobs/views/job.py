"""A job's page: its state, its customers and timeline, and retrying or cancelling it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from audit.models import AuditEntry
from audit.services import client_ip
from jobs.forms import RetryForm
from jobs.models import Job
from jobs.services import job_cancel, job_retry
from jobs.views.common import add_service_errors, jobs_page, may_cancel, queued, visible_job

CUSTOMERS_PER_PAGE = 100


def _job_context(request: HttpRequest, job: Job, retry_form: RetryForm | None = None) -> dict:
    customers = Paginator(job.customers.order_by("pk"), CUSTOMERS_PER_PAGE)
    can_retry = job.status in (Job.Status.FAILED, Job.Status.UNKNOWN) and request.user.has_perm(
        "jobs.run_set_action"
    )
    return {
        "job": job,
        "can_cancel": queued(job) and may_cancel(request.user, job),
        "customers": customers.get_page(request.GET.get("page")),
        "timeline": AuditEntry.objects.filter(job_id=job.pk).order_by("created_at", "id"),
        "retries": job.retries.order_by("created_at"),
        "retry_form": retry_form or (RetryForm() if can_retry else None),
        "now": timezone.now(),
    }


@never_cache
@login_required
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    job = visible_job(request, pk)
    template = "jobs/_job_live.html" if request.GET.get("partial") else "jobs/job_detail.html"
    return render(request, template, _job_context(request, job))


@never_cache
@sensitive_post_parameters("retry_token")
@login_required
@require_POST
@permission_required("jobs.run_set_action", raise_exception=True)
def job_retry_view(request: HttpRequest, pk) -> HttpResponse:
    job = visible_job(request, pk)
    form = RetryForm(request.POST)
    if form.is_valid():
        try:
            jobs = job_retry(
                job=job,
                user=request.user,
                token=form.cleaned_data["retry_token"],
                confirm_unknown=form.cleaned_data["confirm_unknown"],
                confirm_again=form.cleaned_data["confirm_again"],
                idempotency_key=form.cleaned_data["idempotency_key"],
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            add_service_errors(form, exc, rename={"token": "retry_token"})
        else:
            messages.success(request, f"Retry of job {job.pk} submitted.")
            return redirect(jobs_page(jobs))
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
