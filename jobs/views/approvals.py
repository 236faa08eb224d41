"""Four-eyes approvals in the operator UI: what waits for the signed-in user, and a request's
page, where its approvers decide and its submitter may withdraw it.

A request has a page of its own rather than living on the job page: one request holds a whole
batch (one decision for all its parts), and its approvers may see it without seeing anyone's
jobs (`jobs.view_all_jobs`), while the job pages keep their own rule (Job.objects.visible_to).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, Func, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audit.services import client_ip
from jobs.forms import ApprovalDecisionForm
from jobs.models import ApprovalDecision, ApprovalRequest, ApprovalRule, Job, JobCustomer
from jobs.services import ApprovalClosed, approval_approve, approval_deny, approval_withdraw
from jobs.views.common import add_service_errors

REQUESTS_PER_PAGE = 25
CUSTOMERS_PER_PAGE = 100
Pending = ApprovalRequest.Status.PENDING


def approvals_waiting(user) -> dict:
    """For the header, in one query: whether `user` approves anything (a group of theirs
    approves a rule or a pending request) and how many requests wait for their decision."""
    if user is None or not user.is_authenticated:
        return {"approver": False, "waiting": 0}
    groups = Group.objects.filter(user=user).filter(
        Q(pk__in=ApprovalRule.objects.values("approvers_group"))
        | Q(pk__in=ApprovalRequest.objects.filter(status=Pending).values("approvers_group"))
    )
    # COUNT as a plain function, not an aggregate: the subquery then has no GROUP BY.
    waiting = (
        ApprovalRequest.objects.waiting_for(user, timezone.now())
        .order_by()
        .annotate(n=Func(F("pk"), function="COUNT", output_field=IntegerField()))
        .values("n")
    )
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(approver=Exists(groups), waiting=Subquery(waiting))
        .values("approver", "waiting")
        .first()
    )
    return {"approver": bool(row and row["approver"]), "waiting": (row or {}).get("waiting") or 0}


def _summarised(requests):
    """Each request with its action, cluster and customer count (a request's jobs share
    their action and cluster), and its approvals so far."""
    jobs = Job.objects.filter(approval=OuterRef("pk")).order_by("batch_seq", "pk")
    customers = jobs.order_by().values("approval").annotate(n=Sum("customer_count")).values("n")
    approvals = (
        ApprovalDecision.objects.filter(request=OuterRef("pk"), verdict="APPROVE")
        .order_by()
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return requests.select_related("submitter", "approvers_group").annotate(
        job_action=Subquery(jobs.values("action")[:1]),
        cluster_name=Subquery(jobs.values("cluster__name")[:1]),
        customers=Coalesce(Subquery(customers), 0),
        approvals=Coalesce(Subquery(approvals), 0),
    )


@never_cache
@login_required
def approval_list(request: HttpRequest) -> HttpResponse:
    """The requests the signed-in user may decide, the nearest deadline first."""
    now = timezone.now()
    requests = _summarised(ApprovalRequest.objects.waiting_for(request.user, now)).order_by(
        "expires_at", "pk"
    )
    page = Paginator(requests, REQUESTS_PER_PAGE).get_page(request.GET.get("page"))
    for item in page:
        item.action_label = Job.Action(item.job_action).label if item.job_action else ""
        item.time_left = item.expires_at - now
    return render(request, "jobs/approval_list.html", {"page": page, "now": now})


def _visible_request(request: HttpRequest, pk) -> ApprovalRequest:
    """A request its viewer may see: its submitter, a member of its group, or a user who sees
    everyone's jobs; 404 for anyone else, as for a job."""
    user = request.user
    requests = ApprovalRequest.objects.select_related("submitter", "approvers_group")
    if not user.has_perm("jobs.view_all_jobs"):
        requests = requests.filter(
            Q(submitter=user) | Q(approvers_group__in=Group.objects.filter(user=user))
        )
    return get_object_or_404(requests, pk=pk)


def shown_outcome(approval: ApprovalRequest, now) -> str:
    """The request's state in words: a pending request past its deadline is EXPIRED, even
    before housekeeping ends it (it can no longer be decided)."""
    if approval.status == Pending and approval.expires_at <= now:
        return "EXPIRED"
    return approval.status


def _context(request: HttpRequest, approval: ApprovalRequest, form=None) -> dict:
    user = request.user
    now = timezone.now()
    outcome = shown_outcome(approval, now)
    open_ = outcome == Pending
    jobs = list(approval.jobs.select_related("cluster").order_by("batch_seq", "pk"))
    decisions = list(approval.decisions.select_related("decider"))
    may_decide = (
        open_
        and approval.submitter_id != user.pk
        and user.groups.filter(pk=approval.approvers_group_id).exists()
        and all(decision.decider_id != user.pk for decision in decisions)
    )
    customers = JobCustomer.objects.filter(job__approval=approval).order_by("job__batch_seq", "pk")
    first = jobs[0] if jobs else None
    return {
        "approval": approval,
        "outcome": outcome,
        "open": open_,
        "jobs": jobs,
        "first": first,
        "customer_count": sum(job.customer_count for job in jobs),
        "customers": Paginator(
            customers.values_list("cid", flat=True), CUSTOMERS_PER_PAGE
        ).get_page(request.GET.get("page")),
        "decisions": decisions,
        "approvals": sum(1 for d in decisions if d.verdict == ApprovalDecision.Verdict.APPROVE),
        "time_left": approval.expires_at - now if open_ else None,
        "may_decide": may_decide,
        "may_withdraw": open_ and (approval.submitter_id == user.pk or user.is_superuser),
        "is_submitter": approval.submitter_id == user.pk,
        "sees_jobs": approval.submitter_id == user.pk or user.has_perm("jobs.view_all_jobs"),
        "form": (form or ApprovalDecisionForm()) if may_decide else None,
        "title": f"{outcome.replace('_', ' ')} · Approval {str(approval.pk)[:8]} · TMS Dashboard",
    }


@never_cache
@login_required
def approval_detail(request: HttpRequest, pk) -> HttpResponse:
    """A request's page; a POST is an approver's decision (PermissionDenied, 403, for anyone
    who may not decide it, before anything is written)."""
    approval = _visible_request(request, pk)
    if request.method != "POST":
        return render(request, "jobs/approval_detail.html", _context(request, approval))
    form = ApprovalDecisionForm(request.POST)
    if not form.is_valid():
        return _refused(request, approval, form)
    decide = approval_approve if form.cleaned_data["decision"] == "approve" else approval_deny
    try:
        decided = decide(
            request_id=approval.pk,
            user=request.user,
            comment=form.cleaned_data["comment"],
            ip_address=client_ip(request),
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _refused(request, approval, form)
    except ApprovalClosed as exc:
        messages.error(request, str(exc))
        return redirect("approval_detail", pk=approval.pk)
    messages.success(request, _decided_message(decided))
    return redirect("approval_detail", pk=approval.pk)


def _refused(request: HttpRequest, approval: ApprovalRequest, form) -> HttpResponse:
    context = _context(request, approval, form)
    return render(request, "jobs/approval_detail.html", context, status=400)


def _decided_message(decided: ApprovalRequest) -> str:
    if decided.status == ApprovalRequest.Status.APPROVED:
        return "Approved: its jobs are queued for the workers."
    if decided.status == ApprovalRequest.Status.DENIED:
        return "Denied: its jobs end DENIED and are never sent."
    return "Your approval is recorded: the request waits for a second approver."


@never_cache
@login_required
@require_POST
def approval_withdraw_view(request: HttpRequest, pk) -> HttpResponse:
    """The submitter (or an admin) withdraws the request: its jobs end CANCELLED, never sent."""
    approval = _visible_request(request, pk)
    try:
        cancelled = approval_withdraw(
            request_id=approval.pk, user=request.user, ip_address=client_ip(request)
        )
    except ApprovalClosed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Withdrawn: {len(cancelled)} job(s) cancelled, never sent to the cluster."
        )
    return redirect("approval_detail", pk=approval.pk)
