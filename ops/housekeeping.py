"""Housekeeping: ends what dead processes left behind and keeps the task table small.

One pass (`housekeeping_pass`) reaps stale jobs (jobs.services.job_reap_stale), ends the
approval requests past their deadline (EXPIRED, never sent), reminds the approvers of those
still pending at half their wait (once per request), ends the task
rows a killed worker left RUNNING (django-tasks-db never does: they would stay RUNNING and
unprunable forever), queues their jobs again when the cluster was never called and ends those
whose call it cut off as UNKNOWN, with how long the call had run, queues again the notices whose
delivery a dead worker cut off or whose task was lost, prunes finished task rows and past API
rate windows, removes API tokens ended more than TMS_API_TOKENS_KEEP_DAYS ago (audited),
forgets workers long gone, once a day purges the jobs past TMS_RETENTION_DAYS into
TMS_ARCHIVE_DIR (ops.retention) and the audit entries past TMS_AUDIT_RETENTION_DAYS
(ops.audit_retention), and checks the audit trail's hash chain hourly
(ops.audit_watch). Every step is safe to run from several hosts at once: each row changes by
compare-and-set.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from api.throttles import rate_prune
from api.tokens import tokens_remove_ended
from jobs.models import Job
from jobs.services import (
    ReapReport,
    approvals_expire,
    approvals_remind,
    job_interrupted,
    job_reap_stale,
    job_requeue,
    run_job,
)
from notifications.delivery import deliver_notice, notices_recover
from ops.audit_retention import audit_retention_pass
from ops.audit_watch import audit_chain_watch
from ops.heartbeats import alive_since
from ops.models import WorkerHeartbeat
from ops.retention import retention_pass

logger = logging.getLogger(__name__)

# Finished task rows are kept this long (the jobs and the audit trail keep the history).
TASK_ROWS_KEPT = timedelta(days=1)
# A worker's task row is taken and its job claimed within milliseconds; one still not claimed
# after this long is being ridden through an outage, or was lost.
TASK_CLAIM_SECONDS = timedelta(seconds=30)
WORKER_LOST = "ops.worker.WorkerLost"
WORKER_LOST_MESSAGE = (
    "The worker running this task stopped sending heartbeats; housekeeping ended the task."
)


@dataclass
class HousekeepingReport:
    reaped: ReapReport = field(default_factory=ReapReport)
    approvals_expired: list[uuid.UUID] = field(default_factory=list)
    approvals_reminded: list[uuid.UUID] = field(default_factory=list)
    orphaned_tasks: int = 0
    requeued: list[uuid.UUID] = field(default_factory=list)
    interrupted: list[uuid.UUID] = field(default_factory=list)
    notices_requeued: int = 0
    pruned: int = 0
    tokens_removed: int = 0

    @property
    def changed_anything(self) -> bool:
        return bool(
            self.reaped.unknown
            or self.reaped.expired
            or self.approvals_expired
            or self.approvals_reminded
            or self.orphaned_tasks
            or self.requeued
            or self.interrupted
            or self.notices_requeued
            or self.pruned
            or self.tokens_removed
        )

    def __str__(self) -> str:
        return (
            f"{len(self.reaped.unknown)} job(s) UNKNOWN, {len(self.reaped.expired)} not started, "
            f"{len(self.approvals_expired)} approval request(s) EXPIRED, "
            f"{len(self.approvals_reminded)} reminded, "
            f"{self.orphaned_tasks} orphaned task row(s) ended, {len(self.requeued)} job(s) "
            f"queued again, {len(self.interrupted)} cut off by their worker's end (UNKNOWN), "
            f"{self.notices_requeued} notice(s) queued again, "
            f"{self.pruned} finished task row(s) pruned, "
            f"{self.tokens_removed} ended API token(s) removed"
        )


def housekeeping_pass(*, now: datetime | None = None) -> HousekeepingReport:
    now = now or timezone.now()
    report = HousekeepingReport(
        reaped=job_reap_stale(now=now),
        # Those past their deadline first: an expired request is never reminded.
        approvals_expired=approvals_expire(now=now),
        approvals_reminded=approvals_remind(now=now),
    )
    orphans = end_orphaned_tasks(now=now)
    report.orphaned_tasks = len(orphans)
    jobs = {
        uuid.UUID(task.args_kwargs["args"][0]): last_seen
        for task, last_seen in orphans
        if task.task_path == run_job.module_path
    }
    report.requeued = job_requeue(job_ids=[*jobs, *jobs_without_task(now=now)])
    report.interrupted = [
        job_id
        for job_id, last_seen in jobs.items()
        if job_id not in report.requeued and job_interrupted(job_id=job_id, last_seen=last_seen)
    ]
    report.notices_requeued = notices_recover(
        now=now,
        lost=[
            uuid.UUID(task.args_kwargs["args"][0])
            for task, _last_seen in orphans
            if task.task_path == deliver_notice.module_path
        ],
    )
    report.pruned, _ = (
        DBTaskResult.objects.finished().filter(finished_at__lt=now - TASK_ROWS_KEPT).delete()
    )
    rate_prune(now)
    report.tokens_removed = tokens_remove_ended(now=now)
    retention_pass(now=now)
    # The audit purge after the jobs' (its jobs.purged entry goes with the day's purge or the
    # next's), and before the chain check, which then walks from the anchor it leaves.
    audit_retention_pass(now=now)
    audit_chain_watch(now=now)
    return report


def jobs_without_task(*, now: datetime) -> list[uuid.UUID]:
    """The jobs not started that no task will start: theirs failed before it could claim them
    (the database refused it), or was lost. A task row a worker took counts as long as it
    could still be claiming its job (TASK_CLAIM_SECONDS), and a worker riding out an outage
    may still claim it later: the claim lets one delivery run the job, whichever it is."""
    # The jobs first: a job submitted after its tasks were read would look taskless.
    waiting = list(
        Job.objects.in_progress().filter(started_at__isnull=True).values_list("pk", flat=True)
    )
    if not waiting:
        return []
    live = (
        DBTaskResult.objects.filter(task_path=run_job.module_path)
        .filter(
            Q(status=TaskResultStatus.READY)
            | Q(status=TaskResultStatus.RUNNING, started_at__gte=now - TASK_CLAIM_SECONDS)
        )
        .values_list("args_kwargs__args__0", flat=True)
    )
    tasked = {uuid.UUID(job_id) for job_id in live}
    return [job_id for job_id in waiting if job_id not in tasked]


def end_orphaned_tasks(*, now: datetime) -> list[tuple[DBTaskResult, datetime]]:
    """End the RUNNING task rows of workers that went silent, each returned with its worker's
    last heartbeat; forget those workers."""
    cutoff = alive_since(now)
    gone = dict(
        WorkerHeartbeat.objects.filter(last_seen__lt=cutoff).values_list("worker_id", "last_seen")
    )
    if not gone:
        return []
    ended = []
    for task in DBTaskResult.objects.running().only("id", "worker_ids", "task_path", "args_kwargs"):
        if not task.worker_ids or task.worker_ids[-1] not in gone:
            continue
        if DBTaskResult.objects.filter(pk=task.pk, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path=WORKER_LOST,
            traceback=WORKER_LOST_MESSAGE,
        ):
            ended.append((task, gone[task.worker_ids[-1]]))
            logger.warning("task %s ended: its worker %s went silent", task.pk, task.worker_ids[-1])
    # A worker that comes back writes its heartbeat again.
    WorkerHeartbeat.objects.filter(worker_id__in=gone, last_seen__lt=cutoff).delete()
    return ended
