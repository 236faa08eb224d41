"""Jobs as CSV, for the jobs list's export and the admin's export action; a job's customers as
CSV, for its page."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from itertools import chain
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from jobs.models import Job, JobCustomer

# A cell starting with one of these could be run as a formula by a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

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


def csv_cell(value: Any) -> str:
    """`value` as CSV text that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


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


class _Echo:
    """A file-like object whose write returns its argument, to stream what csv.writer writes."""

    def write(self, value: str) -> str:
        return value


def _csv_response(rows: Iterable[list[str]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        map(writer.writerow, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def jobs_csv_response(jobs: Iterable[Job]) -> StreamingHttpResponse:
    """A streamed CSV download of `jobs` (select_related user and cluster; iterate lazily)."""
    rows = chain([CSV_HEADER], map(csv_row, jobs))
    return _csv_response(rows, f"tmsdash-jobs-{timezone.now():%Y%m%d-%H%M%S}.csv")


def customers_csv_response(job: Job, customers: Iterable[JobCustomer]) -> StreamingHttpResponse:
    """A streamed CSV download of the job's per-customer outcomes (iterate lazily)."""
    rows = chain(
        [["customer id", "outcome", "message"]],
        ([csv_cell(c.cid), csv_cell(c.outcome), csv_cell(c.message)] for c in customers),
    )
    return _csv_response(rows, f"tmsdash-job-{job.pk}-customers.csv")
