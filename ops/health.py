"""The health report behind /healthz, read from the database every host shares."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.db.models import Min
from django.utils import timezone

from jobs.models import Job
from ops.heartbeats import ALIVE_SECONDS, Role, alive
from ops.probe import write_refused

UNREACHABLE = {
    "status": "unavailable",
    "database": "unreachable",
    "reason": "The database cannot be reached.",
}


def health_report() -> tuple[bool, dict]:
    """(healthy, report). Unhealthy when the database cannot be reached or written (the write
    probe answers within a second or two, ops.probe), or when no worker or no housekeeping
    process has sent a heartbeat within ALIVE_SECONDS; the report then says why."""
    now = timezone.now()
    try:
        connection.ensure_connection()
    except DatabaseError:
        return False, dict(UNREACHABLE)
    refused = write_refused()
    if refused:
        return False, {"status": "unavailable", "database": "unwritable", "reason": refused}
    try:
        workers = alive(Role.WORKER, now)
        housekeeping = alive(Role.HOUSEKEEPING, now)
        queued = Job.objects.in_progress().filter(started_at__isnull=True)
        summary = queued.aggregate(oldest=Min("created_at"))
        count = queued.count()
    except DatabaseError:
        return False, dict(UNREACHABLE)
    report = {
        "status": "ok",
        "database": "ok",
        "workers_alive": workers,
        "housekeeping_alive": housekeeping,
        "queued": count,
        "oldest_queued_seconds": (
            round((now - summary["oldest"]).total_seconds(), 1) if summary["oldest"] else 0
        ),
    }
    missing = [
        f"No {name} has sent a heartbeat in the last {ALIVE_SECONDS} s."
        for name, processes in (("worker", workers), ("housekeeping process", housekeeping))
        if not processes
    ]
    if missing:
        report["status"] = "unavailable"
        report["reason"] = " ".join(missing)
    return not missing, report
