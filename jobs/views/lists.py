"""The jobs list with its filters and CSV export, and a customer's history."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Upper
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from jobs.csvexport import jobs_csv_response
from jobs.forms import JobFilterForm
from jobs.models import Job, JobCustomer
from jobs.views.common import customer_history_url, live_version
from lib.pagination import CappedCountPaginator

JOBS_PER_PAGE = 50
# Customer IDs offered when the one searched for differs from them only in case.
SUGGESTIONS_MAX = 10


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
    query.pop("part", None)
    query.pop("v", None)
    unended = query.copy()
    unended.pop("ended_from", None)
    unended.pop("ended_to", None)
    context = {
        "form": form,
        # The ended filter shown as one the user can remove (the page without it).
        "ended": form.ended(),
        "unended_query": unended.urlencode(),
        "page": page,
        "query": query.urlencode(),
        "q": q,
        "live": any(job.status == Job.Status.IN_PROGRESS for job in page),
        "version": live_version(page),
        "suggestions": (customer_suggestions(request, q) if q and not page.object_list else []),
    }
    if request.GET.get("part") != "rows":
        return render(request, "jobs/job_list.html", context)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    return render(request, "jobs/_job_rows.html", context)


def _customer_visible(request: HttpRequest, cid: str) -> bool:
    # Per row of the customer, one look-up of its job, as in customer_suggestions: asked
    # whether the customer is among the user's jobs (job_id IN ...), SQLite read every job of
    # the operator, 1.2 s for one with 230,000 jobs.
    return (
        JobCustomer.objects.filter(cid=cid)
        .filter(Exists(Job.objects.visible_to(request.user).filter(pk=OuterRef("job_id"))))
        .exists()
    )


def customer_suggestions(request: HttpRequest, cid: str) -> list[str]:
    """Up to SUGGESTIONS_MAX distinct customer IDs the user can see that equal `cid` ignoring
    case, in order.

    UPPER(cid) = UPPER(%s) is what the index jobcustomer_cid_upper_idx (migration 0008) holds,
    on PostgreSQL and SQLite alike; cid__iexact would be a LIKE on SQLite, which reads every row.
    """
    return list(
        JobCustomer.objects.alias(cid_upper=Upper("cid"))
        .filter(cid_upper=Upper(Value(cid)))
        # Per matching row, one look-up of its job: the matches are few, the user's jobs many.
        .filter(Exists(Job.objects.visible_to(request.user).filter(pk=OuterRef("job_id"))))
        .order_by("cid")
        .values_list("cid", flat=True)
        .distinct()[:SUGGESTIONS_MAX]
    )


@never_cache
@login_required
def job_export(request: HttpRequest) -> StreamingHttpResponse:
    _form, jobs = _filtered_jobs(request)
    return jobs_csv_response(jobs.iterator(chunk_size=2000))


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
    context = {
        "cid": cid,
        "page": page,
        "query": urlencode({"cid": cid}),
        "suggestions": [] if page.object_list else customer_suggestions(request, cid),
    }
    return render(request, "jobs/customer_history.html", context)
