"""What the Overview page shows of now: jobs with an unknown outcome nobody looked at, the jobs
in flight by what they wait for, the workers alive, and since when the oldest job queued (a
time, not an age: an age would change at every refresh, and the page be redrawn with it). Read
from the jobs in flight (the status index: a few rows, whatever the history's size) and the
heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone

from jobs.models import Job
from ops.heartbeats import Role, alive

Status = Job.Status
WaitingFor = Job.WaitingFor


@dataclass(frozen=True)
class Now:
    unknown_not_looked_at: int
    queued: int
    running: int
    waiting_for_cluster: int
    waiting_for_approval: int
    waiting_for_window: int
    workers_alive: int
    oldest_queued_since: datetime | None


def overview_now(*, user_id: int | None = None, now: datetime | None = None) -> Now:
    """Now, for everyone's jobs, or one operator's (`user_id`); the workers are everyone's."""
    now = now or timezone.now()
    jobs = Job.objects.all() if user_id is None else Job.objects.filter(user_id=user_id)
    # The jobs in flight and those waiting for an approval, in one read of the status index.
    running = Q(status=Status.IN_PROGRESS)
    in_flight = jobs.filter(status__in=[Status.IN_PROGRESS, Status.PENDING_APPROVAL]).aggregate(
        queued=Count("pk", filter=running & Q(started_at__isnull=True, waiting_for="")),
        running=Count("pk", filter=running & Q(started_at__isnull=False, waiting_for="")),
        cluster=Count("pk", filter=running & Q(waiting_for=WaitingFor.CLUSTER)),
        window=Count(
            "pk", filter=running & Q(waiting_for__in=[WaitingFor.FREEZE, WaitingFor.WINDOW])
        ),
        approval=Count("pk", filter=Q(status=Status.PENDING_APPROVAL)),
        oldest=Min("created_at", filter=running & Q(started_at__isnull=True)),
    )
    oldest = in_flight["oldest"]
    return Now(
        unknown_not_looked_at=jobs.unknown_not_looked_at().count(),
        queued=in_flight["queued"],
        running=in_flight["running"],
        waiting_for_cluster=in_flight["cluster"],
        waiting_for_approval=in_flight["approval"],
        waiting_for_window=in_flight["window"],
        workers_alive=alive(Role.WORKER, now),
        oldest_queued_since=oldest,
    )
