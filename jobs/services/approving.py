"""Four-eyes approvals: which submissions wait for one, opening the request in the submit's
transaction, reminding its approvers at half its wait, and ending it: approved (its jobs
queued), denied, withdrawn or expired (its jobs ended through `_end`, their tokens deleted and
customers released, never sent). Each of those sends its signal (jobs.signals) in its
transaction, for the notices and the counts.

Every decision is a compare-and-set on the request's status, taken first in its transaction
(on PostgreSQL the UPDATE locks the request's row until the decision commits; on SQLite the
IMMEDIATE transaction holds the write lock): of two approvers deciding at once, one wins and
the other is told it was decided.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ApprovalDecision, ApprovalRequest, ApprovalRule, Cluster, Job
from jobs.services.digests import request_digest
from jobs.services.ending import _end
from jobs.services.running import _enqueue_on_clusters
from jobs.signals import approval_decided, approval_reminder_due, approval_requested

logger = logging.getLogger(__name__)

Event = AuditEntry.Event
Status = Job.Status
Pending = ApprovalRequest.Status.PENDING
Verdict = ApprovalDecision.Verdict


class ApprovalClosed(Exception):
    """The request can no longer be decided or withdrawn: decided, withdrawn or expired."""


@dataclass(frozen=True)
class ApprovalNeeded:
    """A submission waits for approval: by members of `group`, `required` distinct ones,
    for at most `ttl_seconds`. A scheduled run waits for its own only when the rule is
    `per_run`; otherwise approving the schedule's version lets its runs through."""

    rule_id: int
    group: str
    required: int
    ttl_seconds: int
    per_run: bool = False


@dataclass(frozen=True)
class Preapproval:
    """What already approved a scheduled run: a schedule's version, approved by `approvers`
    under the rule `rule_id` (schedules.services.approvals). It waives that rule alone."""

    rule_id: int
    schedule_id: int
    version: int
    approvers: tuple[str, ...]

    def details(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "schedule": self.schedule_id,
            "version": self.version,
            "approved_by": list(self.approvers),
        }


def _covering_rule(action: int, cluster: Cluster, customers: int) -> ApprovalRule | None:
    """The rule that decides a submission, when any covers it (its cluster or any, its action
    or any, at least its `min_customers`). Of several, the strictest: the most approvers
    required, so that a laxer rule never waives a stricter one; then the most specific (a
    named cluster, a named action, the largest `min_customers`), whose group was meant for
    this very case; then the oldest."""
    named_cluster = Case(When(cluster__isnull=False, then=Value(1)), default=Value(0))
    named_action = Case(When(action__isnull=False, then=Value(1)), default=Value(0))
    return (
        ApprovalRule.objects.filter(
            Q(cluster=cluster) | Q(cluster__isnull=True),
            Q(action=action) | Q(action__isnull=True),
            min_customers__lte=customers,
        )
        .select_related("approvers_group")
        .annotate(named_cluster=named_cluster, named_action=named_action)
        .order_by(
            "-approvers_required",
            "-named_cluster",
            "-named_action",
            "-min_customers",
            "pk",
        )
        .first()
    )


def approval_needed(*, action: int, cluster: Cluster, customers: int) -> ApprovalNeeded | None:
    """Whether a submission of `customers` customers would wait for approval, and by whom:
    None when no rule covers it."""
    rule = _covering_rule(action, cluster, customers)
    if rule is None:
        return None
    return ApprovalNeeded(
        rule_id=rule.pk,
        group=rule.approvers_group.name,
        required=rule.approvers_required,
        ttl_seconds=rule.ttl_seconds,
        per_run=rule.per_run,
    )


def _request_open(
    *, user, rule: ApprovalRule, batch_id, part_digests: list[str], now: datetime
) -> ApprovalRequest:
    """Record the request a submission waits in; call it in the submit's transaction."""
    return ApprovalRequest.objects.create(
        rule=rule,
        submitter=user,
        approvers_group=rule.approvers_group,
        approvers_required=rule.approvers_required,
        batch_id=batch_id,
        digest=request_digest(part_digests),
        part_digests=part_digests,
        created_at=now,
        expires_at=now + timedelta(seconds=rule.ttl_seconds),
    )


def _request_details(request: ApprovalRequest) -> dict:
    return {
        "approval_id": str(request.pk),
        "batch_id": str(request.batch_id) if request.batch_id else None,
        "approvers_group": request.approvers_group.name,
        "approvers_required": request.approvers_required,
        "expires_at": request.expires_at.isoformat(),
        "digest": request.digest,
    }


def _request_recorded(request: ApprovalRequest, jobs: list[Job], user, ip_address) -> None:
    """Audit a request opened for `jobs` and announce it; in the submit's transaction, once
    its jobs are written."""
    details = {**_request_details(request), "rule_id": request.rule_id}
    for job in jobs:
        audit_record(
            event=Event.APPROVAL_REQUESTED,
            actor=user,
            job_id=job.pk,
            ip_address=ip_address,
            details=details,
        )
    approval_requested.send(sender=ApprovalRequest, request=request, at=request.created_at)


def _request(request_id: uuid.UUID) -> ApprovalRequest:
    try:
        return ApprovalRequest.objects.select_related("approvers_group", "submitter").get(
            pk=request_id
        )
    except ApprovalRequest.DoesNotExist:
        raise ValidationError("No such approval request.") from None


def _closed(request_id: uuid.UUID, now: datetime) -> ApprovalClosed:
    """Why a request that was pending a moment ago can no longer be decided."""
    request = ApprovalRequest.objects.get(pk=request_id)
    if request.status == Pending:
        return ApprovalClosed(
            f"This request expired at {request.expires_at:%Y-%m-%d %H:%M} UTC: it can no longer "
            "be decided, and its jobs will never be sent."
        )
    deciders = ", ".join(
        request.decisions.values_list("decider__username", flat=True).order_by("decided_at")
    )
    by = f" (by {deciders})" if deciders else ""
    return ApprovalClosed(f"This request was already {request.status.lower()}{by}.")


def _check_decider(request: ApprovalRequest, user, now: datetime) -> None:
    if request.submitter_id == user.pk:
        raise PermissionDenied("You submitted this request: someone else must decide it.")
    if not (user.is_active and user.groups.filter(pk=request.approvers_group_id).exists()):
        raise PermissionDenied(
            f"Only members of {request.approvers_group.name} can decide this request."
        )
    if request.status != Pending or request.expires_at <= now:
        raise _closed(request.pk, now)


def _take(request_id: uuid.UUID, now: datetime) -> None:
    """The compare-and-set every decision starts with: the request still pending and not
    past its deadline, its row held until the transaction ends."""
    if not ApprovalRequest.objects.filter(pk=request_id, status=Pending, expires_at__gt=now).update(
        updated_at=now
    ):
        raise _closed(request_id, now)


def approval_approve(
    *, request_id: uuid.UUID, user, comment: str = "", ip_address: str | None = None
) -> ApprovalRequest:
    """Approve a pending request as `user`, a member of its group who did not submit it
    (PermissionDenied otherwise, before anything is written; the database refuses the
    submitter's decision too). With one approver required, or the second distinct one of
    two, the request is APPROVED and its jobs go to the queue exactly as a submit queues them
    (IN_PROGRESS, their tasks queued in the same transaction); the first of two is recorded
    and the request stays pending. ApprovalClosed when it was decided, withdrawn or expired,
    or this user already approved it."""
    now = timezone.now()
    request = _request(request_id)
    _check_decider(request, user, now)
    with transaction.atomic():
        _take(request.pk, now)
        _decide(request, user, Verdict.APPROVE, comment, now)
        approvals = request.decisions.filter(verdict=Verdict.APPROVE).count()
        queued = list(request.jobs.order_by("batch_seq", "pk").values_list("pk", "cluster_id"))
        jobs = [job_id for job_id, _cluster_id in queued]
        approved = approvals >= request.approvers_required
        if approved:
            ApprovalRequest.objects.filter(pk=request.pk).update(
                status=ApprovalRequest.Status.APPROVED, decided_at=now
            )
            Job.objects.filter(pk__in=jobs, status=Status.PENDING_APPROVAL).update(
                status=Status.IN_PROGRESS, updated_at=now
            )
        details = {
            **_request_details(request),
            "comment": comment,
            "approvals": approvals,
            "approved": approved,
        }
        for job_id in jobs:
            audit_record(
                event=Event.APPROVAL_APPROVED,
                actor=user,
                job_id=job_id,
                ip_address=ip_address,
                details=details,
            )
        if approved:
            _enqueue_on_clusters(queued)
            _announce_end(
                request, ApprovalRequest.Status.APPROVED, now, actor=user, comment=comment
            )
    logger.info(
        "approval %s approved by %s (%d of %d)",
        request.pk,
        user.get_username(),
        approvals,
        request.approvers_required,
    )
    request.refresh_from_db()
    return request


def approval_deny(
    *, request_id: uuid.UUID, user, comment: str, ip_address: str | None = None
) -> ApprovalRequest:
    """Deny a pending request as `user` (who may decide it as for `approval_approve`), with a
    comment saying why (required). Every job of the request ends DENIED, never sent: its
    token deleted and its customers released, audited each. ApprovalClosed as for approving."""
    comment = comment.strip()
    if not comment:
        raise ValidationError({"comment": ["Say why the request is denied."]})
    now = timezone.now()
    request = _request(request_id)
    _check_decider(request, user, now)
    with transaction.atomic():
        _take(request.pk, now)
        _decide(request, user, Verdict.DENY, comment, now)
        _end_request(
            request,
            now,
            request_status=ApprovalRequest.Status.DENIED,
            job_status=Status.DENIED,
            event=Event.APPROVAL_DENIED,
            message=f"Denied by {user.get_username()}: {comment}",
            details={"reason": "denied", "comment": comment},
            actor=user,
            ip_address=ip_address,
        )
    request.refresh_from_db()
    return request


def _decide(request: ApprovalRequest, user, verdict: str, comment: str, now: datetime) -> None:
    try:
        with transaction.atomic():
            ApprovalDecision.objects.create(
                request=request,
                decider=user,
                verdict=verdict,
                comment=comment,
                digest=request.digest,
                decided_at=now,
            )
    except IntegrityError:
        # One decision per decider and request: the first of two approvals was this user's.
        raise ApprovalClosed("You have already approved this request.") from None


def _end_request(
    request: ApprovalRequest,
    now: datetime,
    *,
    request_status: str,
    job_status: str,
    event: str,
    message: str,
    details: dict,
    actor=None,
    ip_address: str | None = None,
) -> list[uuid.UUID]:
    """End a request taken by the caller's compare-and-set, and each of its jobs through
    `_end`; returns the jobs ended."""
    ApprovalRequest.objects.filter(pk=request.pk).update(status=request_status, decided_at=now)
    ended = []
    for job_id in request.jobs.order_by("batch_seq", "pk").values_list("pk", flat=True):
        if _end(
            job_id,
            condition=Q(approval=request.pk),
            from_status=Status.PENDING_APPROVAL,
            status=job_status,
            event=event,
            error_message=message,
            details={**details, "approval_id": str(request.pk)},
            actor=actor,
            ip_address=ip_address,
        ):
            ended.append(job_id)
    _announce_end(request, request_status, now, actor=actor, comment=details.get("comment", ""))
    return ended


def _announce_end(
    request: ApprovalRequest, status: str, now: datetime, *, actor, comment: str
) -> None:
    approval_decided.send(
        sender=ApprovalRequest, request=request, at=now, status=status, actor=actor, comment=comment
    )


def _withdraw(
    request_id: uuid.UUID, user, ip_address: str | None, now: datetime
) -> list[uuid.UUID]:
    """End a pending request withdrawn by `user` (None: a maintainer), its jobs CANCELLED;
    the caller checked who may. Returns the jobs cancelled."""
    request = _request(request_id)
    who = user.get_username() if user is not None else "a maintainer"
    with transaction.atomic():
        _take(request.pk, now)
        return _end_request(
            request,
            now,
            request_status=ApprovalRequest.Status.WITHDRAWN,
            job_status=Status.CANCELLED,
            event=Event.APPROVAL_WITHDRAWN,
            message=f"Withdrawn by {who} before it was approved; never sent to the cluster.",
            details={"reason": "withdrawn"},
            actor=user,
            ip_address=ip_address,
        )


def approval_withdraw(
    *, request_id: uuid.UUID, user, ip_address: str | None = None
) -> list[uuid.UUID]:
    """Withdraw a pending request: its submitter or an admin (superuser) only
    (PermissionDenied otherwise). Every job of it ends CANCELLED, never sent, its token
    deleted and its customers released. ApprovalClosed when it was decided or expired.
    Returns the jobs cancelled."""
    request = _request(request_id)
    if user is not None and not user.is_superuser and request.submitter_id != user.pk:
        raise PermissionDenied("Only the request's submitter or an admin can withdraw it.")
    return _withdraw(request.pk, user, ip_address, timezone.now())


def approvals_expire(*, now: datetime | None = None) -> list[uuid.UUID]:
    """End every pending request past its deadline as EXPIRED, its jobs EXPIRED, never sent,
    their tokens deleted and customers released; expiry is final. Called by housekeeping each
    round; safe from several hosts at once (each request's end is a compare-and-set).
    Returns the requests ended."""
    now = now or timezone.now()
    expired = []
    due = ApprovalRequest.objects.filter(status=Pending, expires_at__lte=now)
    for request in due.select_related("approvers_group"):
        with transaction.atomic():
            if not ApprovalRequest.objects.filter(
                pk=request.pk, status=Pending, expires_at__lte=now
            ).update(updated_at=now):
                continue
            _end_request(
                request,
                now,
                request_status=ApprovalRequest.Status.EXPIRED,
                job_status=Status.EXPIRED,
                event=Event.APPROVAL_EXPIRED,
                message=(
                    f"Expired: not approved by {request.expires_at:%Y-%m-%d %H:%M} UTC; "
                    "never sent to the cluster."
                ),
                details={"reason": "expired"},
            )
        expired.append(request.pk)
    return expired


def approvals_remind(*, now: datetime | None = None) -> list[uuid.UUID]:
    """Take the reminder of every request still pending at half its wait (and not past its
    deadline): a compare-and-set of its `reminded_at`, in the transaction that sends
    `approval_reminder_due`, so that each request's reminder is sent once, whichever of
    several housekeeping processes gets there first. Returns the requests reminded."""
    now = now or timezone.now()
    reminded = []
    due = ApprovalRequest.objects.filter(
        status=Pending, reminded_at__isnull=True, expires_at__gt=now
    ).only("pk", "created_at", "expires_at")
    # Few requests wait at once (people decide them within days), so the half-way point is
    # worked out here rather than in SQL that differs between the engines.
    for request in [request for request in due if request.reminder_due_at <= now]:
        with transaction.atomic():
            if not ApprovalRequest.objects.filter(
                pk=request.pk, status=Pending, reminded_at__isnull=True, expires_at__gt=now
            ).update(reminded_at=now):
                continue
            approval_reminder_due.send(sender=ApprovalRequest, request=request, at=now)
        reminded.append(request.pk)
    return reminded
