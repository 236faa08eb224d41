"""The health report behind /healthz, read from the database every host shares."""

from __future__ import annotations

from django.db import DatabaseError
from django.db.models import Min
from django.utils import timezone

from jobs.models import Job
from ops.heartbeats import ALIVE_SECONDS, workers_alive


def health_report() -> tuple[bool, dict]:
    """(healthy, report). Unhealthy when the database cannot be read or no worker has sent a
    heartbeat within ALIVE_SECONDS; the report then says why."""
    now = timezone.now()
    try:
        alive = workers_alive(now)
        queued = Job.objects.in_progress().filter(started_at__isnull=True)
        summary = queued.aggregate(oldest=Min("created_at"))
        count = queued.count()
    except DatabaseError:
        return False, {
            "status": "unavailable",
            "database": "unreachable",
            "reason": "The database cannot be reached.",
        }
    report = {
        "status": "ok",
        "database": "ok",
        "workers_alive": alive,
        "queued": count,
        "oldest_queued_seconds": (
            round((now - summary["oldest"]).total_seconds(), 1) if summary["oldest"] else 0
        ),
    }
    if not alive:
        report["status"] = "unavailable"
        report["reason"] = f"No worker has sent a heartbeat in the last {ALIVE_SECONDS} s."
    return bool(alive), report
