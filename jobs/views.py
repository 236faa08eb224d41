"""The operator UI. Views parse input, call jobs.services and present the result.

Every page shows jobs or the forms that make them: none is kept by a browser or proxy cache
(never_cache: Cache-Control no-store).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from audit.models import AuditEntry
from audit.services import client_ip
from jobs.csvexport import jobs_csv_response
from jobs.forms import JobFilterForm, RetryForm, SetActionForm
from jobs.models import Job, JobCustomer
from jobs.services import CustomerConflict, job_cancel, job_retry, job_submit
from lib.pagination import CappedCountPaginator

JOBS_PER_PAGE = 50
CUSTOMERS_PER_PAGE = 100


def _add_service_errors(form, exc: ValidationError, rename: dict[str, str] | None = None) -> None:
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


def _jobs_page(jobs: list[Job]) -> str:
    if len(jobs) == 1:
        return reverse("job_detail", args=[jobs[0].pk])
    return reverse("batch_detail", args=[jobs[0].batch_id])


class SignInView(LoginView):
    """Django's sign-in, landing operators on Set Action and everyone else on the jobs list."""

    def get_default_redirect_url(self) -> str:
        if self.request.user.has_perm("jobs.run_set_action"):
            return reverse("set_action")
        return reverse("job_list")


class SignOutView(LogoutView):
    """Django's sign-out, saying so on the sign-in page it lands on."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


@never_cache
@sensitive_post_parameters("token")
@login_required
@permission_required("jobs.run_set_action", raise_exception=True)
def set_action(request: HttpRequest) -> HttpResponse:
    form = SetActionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        # Errors about the customers belong next to where they came from.
        rename = {"cids": "csv_file"} if form.cleaned_data.get("csv_file") else {}
        try:
            jobs = job_submit(user=request.user, ip_address=client_ip(request), **form.submission())
        except CustomerConflict as exc:
            _add_service_errors(form, exc, rename)
            conflicts = exc.job_ids
        except ValidationError as exc:
            _add_service_errors(form, exc, rename)
            conflicts = []
        else:
            return redirect(_jobs_page(jobs))
    else:
        conflicts = []
    recent = Job.objects.filter(user=request.user).select_related("cluster")[:5]
    return render(
        request, "jobs/set_action.html", {"form": form, "recent": recent, "conflicts": conflicts}
    )


def _visible_job(request: HttpRequest, pk) -> Job:
    jobs = Job.objects.visible_to(request.user).select_related("user", "cluster", "retry_of")
    return get_object_or_404(jobs, pk=pk)


def _job_context(request: HttpRequest, job: Job, retry_form: RetryForm | None = None) -> dict:
    customers = Paginator(job.customers.order_by("pk"), CUSTOMERS_PER_PAGE)
    can_retry = job.status in (Job.Status.FAILED, Job.Status.UNKNOWN) and request.user.has_perm(
        "jobs.run_set_action"
    )
    return {
        "job": job,
        "can_cancel": _queued(job) and _may_cancel(request.user, job),
        "customers": customers.get_page(request.GET.get("page")),
        "timeline": AuditEntry.objects.filter(job_id=job.pk).order_by("created_at", "id"),
        "retries": job.retries.order_by("created_at"),
        "retry_form": retry_form or (RetryForm() if can_retry else None),
        "now": timezone.now(),
    }


@never_cache
@login_required
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    job = _visible_job(request, pk)
    template = "jobs/_job_live.html" if request.GET.get("partial") else "jobs/job_detail.html"
    return render(request, template, _job_context(request, job))


@never_cache
@sensitive_post_parameters("retry_token")
@login_required
@require_POST
@permission_required("jobs.run_set_action", raise_exception=True)
def job_retry_view(request: HttpRequest, pk) -> HttpResponse:
    job = _visible_job(request, pk)
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
            _add_service_errors(form, exc, rename={"token": "retry_token"})
        else:
            messages.success(request, f"Retry of job {job.pk} submitted.")
            return redirect(_jobs_page(jobs))
    return render(request, "jobs/job_detail.html", _job_context(request, job, form), status=400)


def _queued(job: Job) -> bool:
    return job.status == Job.Status.IN_PROGRESS and job.started_at is None


def _may_cancel(user, job: Job) -> bool:
    return job.user_id == user.pk or user.is_superuser


def _cancel(request: HttpRequest, jobs: list[Job]) -> None:
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
    job = _visible_job(request, pk)
    _cancel(request, [job])
    return redirect("job_detail", pk=job.pk)


@never_cache
@login_required
@require_POST
def batch_cancel_view(request: HttpRequest, batch_id) -> HttpResponse:
    """Cancel every part of the batch still queued."""
    jobs = list(Job.objects.visible_to(request.user).filter(batch_id=batch_id))
    if not jobs:
        raise Http404("No such batch.")
    queued = [job for job in jobs if _queued(job)]
    if not queued:
        messages.error(request, "No part of this batch is still queued: nothing was cancelled.")
    else:
        _cancel(request, queued)
    return redirect("batch_detail", batch_id=batch_id)


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
        "can_cancel": any(_queued(job) and _may_cancel(request.user, job) for job in jobs),
    }
    template = "jobs/_batch_live.html" if request.GET.get("partial") else "jobs/batch_detail.html"
    return render(request, template, context)


def _filtered_jobs(request: HttpRequest) -> tuple[JobFilterForm, object]:
    may_see_others = request.user.has_perm("jobs.view_all_jobs")
    form = JobFilterForm(request.GET or None, may_see_others=may_see_others)
    jobs = Job.objects.visible_to(request.user).select_related("user", "cluster")
    if form.is_bound and form.is_valid():
        jobs = form.filter(jobs)
        if q := form.cleaned_data.get("q", "").strip():
            jobs = jobs.id_starts_with(q)
    elif form.is_bound:
        jobs = jobs.none()
    return form, jobs


@never_cache
@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    if q and _customer_visible(request, q):
        return redirect(customer_history_url(q))
    form, jobs = _filtered_jobs(request)
    paginator = CappedCountPaginator(jobs, JOBS_PER_PAGE, select_related=("user", "cluster"))
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("partial", None)
    live = any(job.status == Job.Status.IN_PROGRESS for job in page)
    context = {"form": form, "page": page, "query": query.urlencode(), "q": q, "live": live}
    template = "jobs/_job_rows.html" if request.GET.get("partial") else "jobs/job_list.html"
    return render(request, template, context)


def _customer_visible(request: HttpRequest, cid: str) -> bool:
    return JobCustomer.objects.filter(
        cid=cid, job__in=Job.objects.visible_to(request.user)
    ).exists()


@never_cache
@login_required
def job_export(request: HttpRequest) -> StreamingHttpResponse:
    _form, jobs = _filtered_jobs(request)
    return jobs_csv_response(jobs.iterator(chunk_size=2000))


def customer_history_url(cid: str) -> str:
    return reverse("customer_history") + "?" + urlencode({"cid": cid})


@never_cache
@login_required
def customer_history(request: HttpRequest) -> HttpResponse:
    cid = request.GET.get("cid", "")
    if not cid:
        raise Http404("No customer ID given.")
    rows = (
        JobCustomer.objects.filter(cid=cid, job__in=Job.objects.visible_to(request.user))
        .select_related("job__user", "job__cluster")
        .order_by("-job__created_at")
    )
    page = Paginator(rows, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"cid": cid, "page": page, "query": urlencode({"cid": cid})}
    return render(request, "jobs/customer_history.html", context)
