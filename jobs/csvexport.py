"""Jobs as CSV, for the jobs list's export and the admin's export action; a job's customers as
CSV, for its page."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from django.http import StreamingHttpResponse
from django.utils import timezone

from jobs.models import Job, JobCustomer
from lib.csvstream import csv_cell, csv_response

CSV_HEADER = [
    "job id",
    "created",
    "updated",
    "operator",
    "action",
    "cluster",
    "cluster URL",
    "status",
    "HTTP status",
    "error",
    "customers",
    "started",
    "finished",
    "legacy id",
]


def csv_row(job: Job) -> list[str]:
    return [
        csv_cell(value)
        for value in (
            job.pk,
            job.created_at.isoformat(),
            job.updated_at.isoformat(),
            job.user.get_username(),
            job.action_label,
            job.cluster.name if job.cluster else "",
            job.cluster_url,
            job.status,
            job.http_status,
            job.error_message,
            job.customer_count,
            job.started_at.isoformat() if job.started_at else "",
            job.finished_at.isoformat() if job.finished_at else "",
            job.legacy_id,
        )
    ]


def jobs_csv_response(jobs: Iterable[Job]) -> StreamingHttpResponse:
    """A streamed CSV download of `jobs` (select_related user and cluster; iterate lazily)."""
    rows = chain([CSV_HEADER], map(csv_row, jobs))
    return csv_response(rows, f"tmsdash-jobs-{timezone.now():%Y%m%d-%H%M%S}.csv")


def customers_csv_response(job: Job, customers: Iterable[JobCustomer]) -> StreamingHttpResponse:
    """A streamed CSV download of the job's per-customer outcomes (iterate lazily)."""
    rows = chain(
        [["customer id", "outcome", "message"]],
        ([csv_cell(c.cid), csv_cell(c.outcome), csv_cell(c.message)] for c in customers),
    )
    return csv_response(rows, f"tmsdash-job-{job.pk}-customers.csv")
