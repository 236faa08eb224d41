"""What the metrics count as it happens: every failed sign-in (including those the audit
trail leaves out to stay unflooded, and those refused during a lock-out), every job's end,
counted in the transaction that ends it, and every approval request made or ended, in its
transaction. And what wakes idle workers: a task queued, a job ended whose call slot let a
waiting job start."""

from __future__ import annotations

import logging

from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_tasks_db.models import DBTaskResult

from jobs.models import Job
from jobs.signals import approval_decided, approval_requested, job_ended
from lib.outage import PASSING, outage_ended
from ops.counters import (
    APPROVALS,
    CALL_SECONDS,
    CALLS_IN_BUCKET,
    JOBS_ENDED,
    OUTAGES,
    REAPED,
    RETRIED,
    SIGNIN_FAILURES,
    counter_increment,
    counters_increment,
)
from ops.wakeups import queue_changed

logger = logging.getLogger(__name__)

# Upper bounds, in seconds, of the call-duration histogram's buckets.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
ENDED_BY_A_CALL = {Job.Status.SUCCESS: "success", Job.Status.FAILED: "failed"}
REAP_REASONS = ("interrupted", "not_started")
# The outcome label of tmsdash_approvals_total: requests made, then how they ended.
APPROVAL_OUTCOMES = ("requested", "approved", "denied", "expired", "withdrawn")


@receiver(user_login_failed, dispatch_uid="ops_count_signin_failure")
def count_signin_failure(sender, credentials, request=None, **kwargs) -> None:
    counter_increment(SIGNIN_FAILURES)


@receiver(post_save, sender=DBTaskResult, dispatch_uid="ops_wake_on_enqueue")
def wake_on_enqueue(sender, instance, created, **kwargs) -> None:
    if created:
        queue_changed()


@receiver(job_ended, dispatch_uid="ops_count_job_end")
def count_job_end(sender, job, status, finished_at, reason, woke_waiting=True, **kwargs) -> None:
    # A job's end matters to idle workers only when it brought a waiting job's task forward:
    # every other task woke them when it was queued. (A NOTIFY per job's end also makes
    # PostgreSQL commit the ending transactions one at a time.)
    if woke_waiting:
        queue_changed()
    cluster = job.cluster.name if job.cluster_id else ""
    # One statement for all of a job's counts.
    counts = [(JOBS_ENDED, {"status": status, "cluster": cluster, "action": job.action_label}, 1)]
    if reason in REAP_REASONS:
        counts.append((REAPED, {"reason": reason}, 1))
    if status in ENDED_BY_A_CALL and job.started_at:
        seconds = (finished_at - job.started_at).total_seconds()
        labels = {"cluster": cluster, "outcome": ENDED_BY_A_CALL[status]}
        bound = next((f"{b:g}" for b in BUCKETS if seconds <= b), "+Inf")
        counts.append((CALLS_IN_BUCKET, {**labels, "le": bound}, 1))
        counts.append((CALL_SECONDS, labels, seconds))
    counters_increment(counts)


@receiver(approval_requested, dispatch_uid="ops_count_approval_requested")
def count_approval_requested(sender, request, **kwargs) -> None:
    counter_increment(APPROVALS, {"outcome": "requested"})


@receiver(approval_decided, dispatch_uid="ops_count_approval_decided")
def count_approval_decided(sender, request, status, **kwargs) -> None:
    counter_increment(APPROVALS, {"outcome": status.lower()})


@receiver(outage_ended, dispatch_uid="ops_count_outage")
def count_outage(sender, seconds, retried, **kwargs) -> None:
    # Sent when the database took work again; should it fail again at once, the count is the
    # one thing lost, not the process.
    try:
        with transaction.atomic():
            counter_increment(OUTAGES)
            counter_increment(RETRIED, amount=retried)
    except PASSING:
        logger.warning("database outage of %.1f s not counted: the database failed again", seconds)
