"""Submitting a FAILED or UNKNOWN job, or every such part of a batch, again as new jobs:
who may, what needs a confirmation, and which customers go again; and the review of such a
retry, which checks it alike and writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from jobs.models import Cluster, Job, JobCustomer
from jobs.services.approving import ApprovalNeeded, approval_needed
from jobs.services.freezes import freeze_check
from jobs.services.input import _validated
from jobs.services.limits import ERRORS_NAMED
from jobs.services.submit import Submitted, _chunks, _record

Status = Job.Status


@dataclass(frozen=True)
class RetryPreview:
    """What a retry would record: its action and cluster, the customers that go again
    (`failed_only`: those that failed, as the cluster reported them; otherwise all of them),
    how many jobs it retries and how many new jobs it makes; and who must approve it first
    when an approval rule covers it."""

    action: int
    cluster: Cluster
    cids: list[str]
    failed_only: bool
    retried: int
    parts: int
    approval: ApprovalNeeded | None = None


@dataclass(frozen=True)
class _Plan:
    action: int
    cluster: Cluster
    # Each job retried, with the customers that go again for it.
    parts: list[tuple[Job, list[str]]]
    failed_only: bool
    replay: bool


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def _plan(
    jobs: list[Job],
    *,
    user,
    token: str | None,
    stored_credential: bool,
    confirm_unknown: bool,
    confirm_again: bool,
    idempotency_key: str | None,
) -> _Plan:
    """Check a retry of `jobs` (one job, or a batch's failed parts) as a submit is checked,
    and what needs a confirmation; raises as `job_retry` does and writes nothing."""
    for job in jobs:
        _check_retry(
            job,
            user,
            confirm_unknown=confirm_unknown,
            confirm_again=confirm_again,
            idempotency_key=idempotency_key,
        )
    replay = _key_used(user, idempotency_key)
    parts = [(job, *_retry_cids(job)) for job in jobs]
    action, cluster, _cids = _validated(
        user=user,
        action=jobs[0].action,
        cluster=jobs[0].cluster,
        cids=[cid for _job, cids, _failed in parts for cid in cids],
        cid_positions=None,
        token=token,
        idempotency_key=idempotency_key,
        stored_credential=stored_credential,
    )
    if not replay:
        # Refused as a new submit is while a change freeze covers the cluster (Frozen); the
        # same retry sent again replays the jobs it made, as `job_submit` does.
        freeze_check(user=user, cluster=cluster, override_reason="", at=timezone.now())
    return _Plan(
        action=action,
        cluster=cluster,
        parts=[(job, cids) for job, cids, _failed in parts],
        failed_only=all(failed for _job, _cids, failed in parts),
        replay=replay,
    )


def _failed_parts(batch_id: uuid.UUID, user) -> list[Job]:
    """The batch's FAILED and UNKNOWN parts `user` may see; refused when there is none."""
    parts = list(
        Job.objects.visible_to(user)
        .filter(batch_id=batch_id, status__in=[Status.FAILED, Status.UNKNOWN])
        .select_related("cluster")
        .order_by("batch_seq")
    )
    if not parts:
        raise ValidationError("No part of this batch failed or is unknown: nothing to retry.")
    return parts


def _preview(plan: _Plan) -> RetryPreview:
    cids = [cid for _job, cids in plan.parts for cid in cids]
    return RetryPreview(
        action=plan.action,
        cluster=plan.cluster,
        cids=cids,
        failed_only=plan.failed_only,
        retried=len(plan.parts),
        parts=sum(len(_chunks(cids, plan.cluster)) for _job, cids in plan.parts),
        approval=approval_needed(action=plan.action, cluster=plan.cluster, customers=len(cids)),
    )


def _recorded(plan: _Plan, *, user, token, stored_credential, idempotency_key, ip_address):
    return _record(
        user=user,
        action=plan.action,
        cluster=plan.cluster,
        parts=[(chunk, job) for job, cids in plan.parts for chunk in _chunks(cids, plan.cluster)],
        token=None if stored_credential else token,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_retry_preview(*, job: Job, user, **checked) -> RetryPreview:
    """Check a retry of `job` as `job_retry` checks it (the same arguments but `ip_address`),
    and say what it would record; writes nothing."""
    return _preview(_plan([job], user=user, **checked))


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def batch_retry_preview(*, batch_id: uuid.UUID, user, **checked) -> RetryPreview:
    """Check a retry of a batch's failed parts as `batch_retry` checks it (the same
    arguments but `ip_address`), and say what it would record; writes nothing."""
    return _preview(_plan(_failed_parts(batch_id, user), user=user, **checked))


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def job_retry(
    *,
    job: Job,
    user,
    token: str | None = None,
    stored_credential: bool = False,
    confirm_unknown: bool = False,
    confirm_again: bool = False,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> Submitted:
    """Submit a FAILED or UNKNOWN job again as new job(s) with `retry_of` set.

    Same action and cluster; the customers that failed when the cluster reported per-customer
    outcomes, otherwise all of them. A new token is required, or `stored_credential` where a
    run grant of the user allows the cluster's (as for `job_submit`). An UNKNOWN job may
    already have been applied, so it needs `confirm_unknown`; a job already retried would run
    its customers once more, so it needs `confirm_again` (the same retry form sent twice is a
    replay, not a second retry). The old job is never changed.
    """
    plan = _plan(
        [job],
        user=user,
        token=token,
        stored_credential=stored_credential,
        confirm_unknown=confirm_unknown,
        confirm_again=confirm_again,
        idempotency_key=idempotency_key,
    )
    return _recorded(
        plan,
        user=user,
        token=token,
        stored_credential=stored_credential,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


# Error reports hide every local of this call and of what it calls: the token is one.
@sensitive_variables()
def batch_retry(
    *,
    batch_id: uuid.UUID,
    user,
    token: str | None = None,
    stored_credential: bool = False,
    confirm_unknown: bool = False,
    confirm_again: bool = False,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> Submitted:
    """Retry every FAILED and UNKNOWN part of a batch at once, as one new batch (or one job):
    each part's customers as `job_retry` would take them, in jobs of their own whose
    `retry_of` is that part. The same confirmations as `job_retry`, for any part that needs
    them. Raises ValidationError when no part can be retried, and Frozen during a change
    freeze of the cluster.
    """
    plan = _plan(
        _failed_parts(batch_id, user),
        user=user,
        token=token,
        stored_credential=stored_credential,
        confirm_unknown=confirm_unknown,
        confirm_again=confirm_again,
        idempotency_key=idempotency_key,
    )
    return _recorded(
        plan,
        user=user,
        token=token,
        stored_credential=stored_credential,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def _key_used(user, idempotency_key: str | None) -> bool:
    """Whether this key already made jobs: sending it again is a replay, not a new retry."""
    return bool(idempotency_key) and (
        Job.objects.filter(user=user, idempotency_key=idempotency_key).exists()
    )


def _check_retry(
    job: Job, user, *, confirm_unknown: bool, confirm_again: bool, idempotency_key: str | None
) -> None:
    """Refuse to retry `job` unless `user` may, it FAILED or is UNKNOWN, and what needs a
    confirmation (an UNKNOWN outcome, an earlier retry) has it. An earlier retry made with
    `idempotency_key` needs none: this is the same retry sent again, which replays it."""
    if job.user_id != user.pk and not user.has_perm("jobs.view_all_jobs"):
        raise PermissionDenied("You may not retry another operator's job.")
    if job.status not in (Status.FAILED, Status.UNKNOWN):
        raise ValidationError(
            f"Only a FAILED or UNKNOWN job can be retried; this one is {job.status}."
        )
    if job.status == Status.UNKNOWN and not confirm_unknown:
        raise ValidationError(
            {
                "confirm_unknown": [
                    f"The cluster may already have applied job {job.pk}'s action: confirm that "
                    "you checked before retrying it."
                ]
            }
        )
    if job.cluster is None:
        raise ValidationError("This job has no cluster (it was imported); it cannot be retried.")
    earlier = list(job.retries.order_by("created_at").values_list("pk", "status"))
    # The key is looked for after the retries are read: a confirmation sent at the same
    # moment that made one of them is then seen, and this one replays it, not refused.
    if earlier and not confirm_again and not _key_used(user, idempotency_key):
        shown = ", ".join(f"{pk} ({status})" for pk, status in earlier[:ERRORS_NAMED])
        raise ValidationError(
            {
                "confirm_again": [
                    f"Job {job.pk} was already retried as {shown}: confirm to run its "
                    "customers again."
                ]
            }
        )


def _retry_cids(job: Job) -> tuple[list[str], bool]:
    """The customers that failed, when the cluster reported per customer (and True);
    otherwise all of them (and False)."""
    customers = job.customers.order_by("pk")
    failed = list(
        customers.filter(outcome=JobCustomer.Outcome.FAILED).values_list("cid", flat=True)
    )
    if failed:
        return failed, True
    return list(customers.values_list("cid", flat=True)), False
