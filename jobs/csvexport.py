"""Jobs as CSV, for the jobs list's export and the admin's export action."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from itertools import chain
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from jobs.models import Job

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


def jobs_csv_response(jobs: Iterable[Job]) -> StreamingHttpResponse:
    """A streamed CSV download of `jobs` (select_related user and cluster; iterate lazily)."""
    writer = csv.writer(_Echo())
    lines = (writer.writerow(row) for row in chain([CSV_HEADER], map(csv_row, jobs)))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"tmsdash-jobs-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
