"""A job's lineage: the job it retries, the job that one retries, and so on to the first."""

from __future__ import annotations

import uuid

from jobs.models import Job

# A chain of retries longer than this is cut there (each step is one query).
LONGEST_CHAIN = 100


def lineage_root(job_id: uuid.UUID) -> uuid.UUID:
    """The id of the first job of `job_id`'s chain of retries (itself when it retries none)."""
    current = job_id
    for _step in range(LONGEST_CHAIN):
        parent = Job.objects.filter(pk=current).values_list("retry_of_id", flat=True).first()
        if parent is None:
            return current
        current = parent
    return current
