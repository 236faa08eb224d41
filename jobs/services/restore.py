"""Bringing jobs back: from a purge's archive (jobs.services.retention), or from the audit entry
of a job `dedupe_jobs --apply` removed.

A restored job is the archived one exactly: its id, times, status, customers and their
outcomes, the rows that went with it, and its link to the job it retries. A job that exists is
never overwritten (it is skipped and named), so restoring twice changes nothing. A job that
points at a row gone since (its operator, cluster, approval request...) is skipped and named.
A retry's link to a job that neither exists nor is restored with it is left empty, and named.
Each restore that brings a job back is one `jobs.restored` audit entry; restored jobs count in
the per-hour counts again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import models, transaction
from django.db.models import Case, Value, When

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Job
from jobs.services.archive import (
    archive_records,
    file_digest,
    instance_of,
    model_of,
)
from jobs.services.counting import count_jobs_added, ended_job

BATCH = 500
# Ids named in the audit entry; the counts cover the rest.
AUDITED_IDS = 100


class RestoreError(Exception):
    """Nothing to restore from: the message says why."""


@dataclass
class RestoreReport:
    restored: list[uuid.UUID] = field(default_factory=list)
    rows: Counter = field(default_factory=Counter)
    existing: list[uuid.UUID] = field(default_factory=list)
    # (job, why): a row it points at is gone.
    missing: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    # (retry, the job it retried): restored without the link.
    unlinked: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    not_in_archive: list[uuid.UUID] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"restored {len(self.restored)} job(s) with "
            f"{self.rows.get('jobs.jobcustomer', 0)} customer row(s); "
            f"{len(self.existing)} already there (left as they are), "
            f"{len(self.missing)} skipped (a row they point at is gone), "
            f"{len(self.unlinked)} without their retry link, "
            f"{len(self.not_in_archive)} not in the archive"
        )


def jobs_restore(
    *,
    archive: Path,
    job_ids: Iterable[uuid.UUID] | None = None,
    actor_username: str = "",
    progress: Callable[[int], None] | None = None,
) -> RestoreReport:
    """Restore the archive's jobs (only `job_ids` when given; see the module docstring).

    The whole archive is read and checked first (every job's SHA-256, the footer): one that
    fails restores nothing (ArchiveError). Then BATCH jobs per transaction, each job's
    SHA-256 checked again as it is read; a retry whose job comes in a later batch is linked
    once that one is in."""
    wanted = set(job_ids) if job_ids is not None else None
    targets = set()
    for record in archive_records(archive):
        pk = uuid.UUID(record["id"])
        if wanted is None or pk in wanted:
            targets.add(pk)
    report = RestoreReport(not_in_archive=sorted((wanted or set()) - set(targets)))
    links: list[tuple[uuid.UUID, uuid.UUID]] = []
    batch: list[dict[str, Any]] = []
    for record in archive_records(archive):
        if uuid.UUID(record["id"]) in targets:
            batch.append(record)
        if len(batch) == BATCH:
            links += _restore_batch(batch, targets, report)
            batch = []
            if progress:
                progress(len(report.restored))
    if batch:
        links += _restore_batch(batch, targets, report)
    _link_later(links, report)
    if progress:
        progress(len(report.restored))
    if report.restored:
        _audit(
            report,
            actor_username,
            {"archive": str(archive), "archive_sha256": file_digest(archive)},
        )
    return report


def _restore_batch(
    records: list[dict[str, Any]],
    targets: set[uuid.UUID],
    report: RestoreReport,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Insert one batch in one transaction; return the (retry, job) links still to set."""
    later = []
    with transaction.atomic():
        ids = [uuid.UUID(record["id"]) for record in records]
        present = set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))
        report.existing += [pk for pk in ids if pk in present]
        records = [r for r in records if uuid.UUID(r["id"]) not in present]
        jobs = [(instance_of(Job, record["job"]), record) for record in records]
        rows = {job.pk: [job, *_rows(record)] for job, record in jobs}
        gone = _gone(rows)
        report.missing += list(gone.items())
        coming = {job.pk for job, _ in jobs if job.pk not in gone}
        kept = []
        for job, _ in jobs:
            if job.pk in gone:
                continue
            target = job.retry_of_id
            if target and target not in coming and not Job.objects.filter(pk=target).exists():
                job.retry_of_id = None
                if target in targets:
                    later.append((job.pk, target))
                else:
                    report.unlinked.append((job.pk, target))
            kept.append(job)
        links = {uuid.UUID(record["id"]): record["links"] for record in records}
        _insert(kept, [row for job in kept for row in rows[job.pk][1:]], report)
        _relink({job.pk: links[job.pk] for job in kept})
    return later


def _rows(record: dict[str, Any]) -> list[models.Model]:
    return [
        instance_of(model_of(label), row)
        for label, children in record["children"].items()
        for row in children
    ]


def _gone(rows: dict[uuid.UUID, list[models.Model]]) -> dict[uuid.UUID, str]:
    """The jobs (by id) whose row or a row of theirs points at a row that does not exist
    (other than a job, which `_restore_batch` deals with), with what is gone."""
    wanted: dict[type[models.Model], set] = {}
    for children in rows.values():
        for row in children:
            for fk in _foreign_keys(row):
                value = getattr(row, fk.attname)
                if value is not None and fk.related_model is not Job:
                    wanted.setdefault(fk.related_model, set()).add(value)
    found = {
        model: set(model._default_manager.filter(pk__in=values).values_list("pk", flat=True))
        for model, values in wanted.items()
    }
    inserted = {(type(row), row.pk) for children in rows.values() for row in children}
    gone = {}
    for pk, children in rows.items():
        for row in children:
            for fk in _foreign_keys(row):
                value = getattr(row, fk.attname)
                if (
                    value is not None
                    and fk.related_model is not Job
                    and value not in found[fk.related_model]
                    and (fk.related_model, value) not in inserted
                ):
                    gone[pk] = f"its {fk.related_model._meta.label_lower} {value} is gone"
    return gone


def _foreign_keys(row: models.Model) -> list[models.ForeignKey]:
    return [f for f in row._meta.concrete_fields if f.is_relation]


def _insert(jobs: list[Job], children: list[models.Model], report: RestoreReport) -> None:
    updated = {job.pk: job.updated_at for job in jobs}
    Job.objects.bulk_create(jobs)
    # bulk_create stamps `updated_at` (auto_now) with now: put back the archived one.
    if jobs:
        Job.objects.filter(pk__in=list(updated)).update(
            updated_at=Case(*(When(pk=pk, then=Value(at)) for pk, at in updated.items()))
        )
    for job in jobs:
        job.updated_at = updated[job.pk]
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for row in children:
        by_model.setdefault(type(row), []).append(row)
    for model, rows in by_model.items():
        model._default_manager.bulk_create(rows)
        report.rows[model._meta.label_lower] += len(rows)
    report.rows["jobs.job"] += len(jobs)
    count_jobs_added(ended_job(job) for job in jobs)
    report.restored += [job.pk for job in jobs]


def _relink(links: dict[uuid.UUID, dict[str, list]]) -> None:
    """Point the rows that lost their link when the job went (a schedule's occurrence) at
    it again, those that still exist and point nowhere."""
    for pk, named in links.items():
        for key, ids in named.items():
            label, attname = key.rsplit(".", 1)
            model_of(label)._default_manager.filter(pk__in=ids, **{attname: None}).update(
                **{attname: pk}
            )


def _link_later(links: list[tuple[uuid.UUID, uuid.UUID]], report: RestoreReport) -> None:
    """Set the retry links whose job came in a later batch, now that it is in."""
    with transaction.atomic():
        for pk, target in links:
            if Job.objects.filter(pk=target).exists():
                Job.objects.filter(pk=pk, retry_of__isnull=True).update(retry_of_id=target)
            else:
                report.unlinked.append((pk, target))


def _audit(report: RestoreReport, actor_username: str, source: dict[str, Any]) -> None:
    with transaction.atomic():
        audit_record(
            event=AuditEntry.Event.JOBS_RESTORED,
            actor_username=actor_username,
            job_id=report.restored[0] if len(report.restored) == 1 else None,
            details={
                **source,
                "restored": len(report.restored),
                "rows": dict(sorted(report.rows.items())),
                "job_ids": [str(pk) for pk in report.restored[:AUDITED_IDS]],
                "existing": len(report.existing),
                "skipped": len(report.missing),
            },
        )


def job_restore_deduplicated(*, job_id: uuid.UUID, actor_username: str = "") -> RestoreReport:
    """Restore a job `dedupe_jobs --apply` removed, from its `job.deduplicated` audit entry
    (its columns and customers; the customers get new row ids). Raise RestoreError when no
    such entry exists."""
    entry = (
        AuditEntry.objects.filter(event=AuditEntry.Event.JOB_DEDUPLICATED, job_id=job_id)
        .order_by("-created_at", "-pk")
        .first()
    )
    if entry is None:
        raise RestoreError(f"no job.deduplicated audit entry for job {job_id}")
    columns = {f.attname for f in Job._meta.concrete_fields}
    customers = [dict(row, job_id=str(job_id)) for row in entry.details["customers"]]
    record = {
        "job": {k: v for k, v in entry.details["job"].items() if k in columns},
        "children": {"jobs.jobcustomer": customers} if customers else {},
        "links": {},
    }
    report = RestoreReport()
    links = _restore_batch([{"id": str(job_id), **record}], set(), report)
    _link_later(links, report)
    if report.restored:
        _audit(report, actor_username, {"audit_entry": entry.pk, "source": "job.deduplicated"})
    return report
