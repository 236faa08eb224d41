"""Putting a job's task in the queue: when it is submitted, when its claim must wait for a
call slot, and when its task was lost before it started."""

from __future__ import annotations

import uuid
from datetime import datetime


def _enqueue(job_ids: list[uuid.UUID], *, run_after: datetime | None = None) -> list[str]:
    """Queue each job's task; returns the tasks' ids."""
    from jobs.tasks import run_job

    task = run_job.using(run_after=run_after) if run_after else run_job
    return [task.enqueue(str(job_id)).id for job_id in job_ids]
