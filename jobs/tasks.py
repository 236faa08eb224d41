from __future__ import annotations

import uuid

from django_tasks import task

from jobs.services import job_run


@task()
def run_job(job_id: str) -> None:
    """Run one job. Delivered twice, it still calls the cluster at most once (see job_run)."""
    job_run(job_id=uuid.UUID(job_id))
