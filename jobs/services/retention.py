"""Purging ended jobs into a verified archive (jobs.services.archive).

The rule: a job goes when it ended (SUCCESS, FAILED, UNKNOWN, CANCELLED, DENIED or EXPIRED)
before the cutoff (by `finished_at`; by `created_at` for a job without one), unless it still
holds a token or call slot, or a job that stays retries it (through `retry_of`, at any depth).
In progress (held or not) and pending approval jobs never go.

A job goes with the rows hanging off it (customers, the look at an unknown outcome, notices:
every relation to jobs except `retry_of` and those that only a job in progress holds), each
in its record; a row that only points at a job and loses the link when the job goes
(a schedule's occurrence) is named in the record's `links`, so a restore can link it again.

Three steps: write the archive (newest jobs first, so a retry is decided before the job it
retries), read it back whole and check it, and only then delete, one short transaction per
`BATCH` jobs, each job locked and deleted only if its rows are still exactly the archived ones.
The purge is one `jobs.purged` audit entry with the counts, the cutoff and the archive's
SHA-256. Jobs leave the per-hour counts in the transaction that deletes them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ENDED_STATUSES, InFlightCall, InFlightCustomer, Job, JobToken
from jobs.services.archive import (
    ArchiveError,
    ArchiveWriter,
    archive_check,
    archive_records,
    file_digest,
    job_digest,
    plain,
    rows_of,
)
from jobs.services.counting import count_jobs_removed, ended_job

BATCH = 500
# Rows only a job in progress has: a job that still has one is never purged.
HOLDS = (JobToken, InFlightCustomer, InFlightCall)
KEPT_HOLDS = "still holds a token or call slot"
KEPT_RETRIED = "retried by a job that stays"
KEPT_CHANGED = "changed after it was archived"
KEPT_REFERENCED = "still referenced by another row"

Progress = Callable[[str, int], None]


@dataclass
class PurgeReport:
    cutoff: dt.datetime
    dry_run: bool
    archive: Path | None = None
    archive_sha256: str = ""
    archived: int = 0
    purged: int = 0
    # Rows per model: archived (or, in a dry run, that would go) and deleted.
    rows: Counter = field(default_factory=Counter)
    deleted: Counter = field(default_factory=Counter)
    # Jobs ended before the cutoff that stay, by reason.
    kept: Counter = field(default_factory=Counter)
    # Stopped at its limit: older jobs may be left for the next run.
    more: bool = False

    def __str__(self) -> str:
        kept = ", ".join(f"{count} {why}" for why, count in sorted(self.kept.items()))
        customers = self.rows.get("jobs.jobcustomer", 0)
        if self.dry_run:
            head = f"would purge {self.archived} job(s) with {customers} customer row(s)"
        else:
            head = (
                f"purged {self.purged} of {self.archived} archived job(s) with "
                f"{self.deleted.get('jobs.jobcustomer', 0)} customer row(s) into {self.archive}"
            )
        cutoff = self.cutoff.isoformat(timespec="seconds")
        return f"{head}; ended before {cutoff}; kept: {kept or 'none'}"


def ended_before(cutoff: dt.datetime) -> Q:
    return Q(status__in=ENDED_STATUSES) & (
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
    )


def _relations() -> tuple[list[models.ForeignKey], list[models.ForeignKey]]:
    """The foreign keys to Job whose rows go with a job (children), and those that only lose
    their link (links), besides `retry_of` and the holds."""
    children, links = [], []
    # include_hidden: relations named "+" (notices) count too.
    for rel in Job._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        if rel.related_model is Job or rel.related_model in HOLDS:
            continue
        (links if rel.on_delete is models.SET_NULL else children).append(rel.field)
    return children, links


def job_records(ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Each of these jobs' archive record (job, children, links), in the order of `ids`."""
    children_fks, link_fks = _relations()
    jobs = {row["id"]: row for row in rows_of(Job, pk__in=ids)}
    children: dict[str, dict[str, list]] = defaultdict(dict)
    for fk in children_fks:
        label = fk.model._meta.label_lower
        for row in rows_of(fk.model, **{f"{fk.name}__in": ids}):
            children[row[fk.attname]].setdefault(label, []).append(row)
    links: dict[str, dict[str, list]] = defaultdict(dict)
    for fk in link_fks:
        key = f"{fk.model._meta.label_lower}.{fk.attname}"
        pairs = fk.model._default_manager.filter(**{f"{fk.name}__in": ids}).order_by("pk")
        for pk, job_id in pairs.values_list("pk", fk.attname):
            links[str(job_id)].setdefault(key, []).append(plain(pk))
    return [
        {"job": jobs[str(pk)], "children": children[str(pk)], "links": links[str(pk)]}
        for pk in ids
        if str(pk) in jobs
    ]


def _candidates(cutoff: dt.datetime) -> Iterator[list[tuple[dt.datetime, uuid.UUID]]]:
    """The jobs ended before the cutoff, newest first, BATCH at a time (keyset paging)."""
    rows = Job.objects.filter(ended_before(cutoff)).order_by("-created_at", "-id")
    last = None
    while True:
        page = rows
        if last is not None:
            page = page.filter(Q(created_at__lt=last[0]) | Q(created_at=last[0], id__lt=last[1]))
        batch = list(page.values_list("created_at", "id")[:BATCH])
        if not batch:
            return
        yield batch
        last = batch[-1]


def _going(
    batch: list[tuple[dt.datetime, uuid.UUID]],
    cutoff: dt.datetime,
    kept: dict[uuid.UUID, str],
) -> list[uuid.UUID]:
    """The batch's jobs that go, in order; those that stay are added to `kept` with why.

    A job's retries are newer, so they were decided before it: a retry goes if it ended
    before the cutoff, came earlier in this newest-first walk and was not kept."""
    ids = [pk for _, pk in batch]
    held = set()
    for model in HOLDS:
        held.update(model.objects.filter(job_id__in=ids).values_list("job_id", flat=True))
    retries = defaultdict(list)
    for pk, target, created_at, ends in (
        Job.objects.filter(retry_of__in=ids)
        .annotate(ends=models.ExpressionWrapper(ended_before(cutoff), models.BooleanField()))
        .values_list("pk", "retry_of_id", "created_at", "ends")
    ):
        retries[target].append((pk, created_at, ends))
    going = []
    for created_at, pk in batch:
        if pk in held:
            kept[pk] = KEPT_HOLDS
        elif any(
            not ends or (r_created, r_pk) <= (created_at, pk) or r_pk in kept
            for r_pk, r_created, ends in retries[pk]
        ):
            kept[pk] = KEPT_RETRIED
        else:
            going.append(pk)
    return going


def jobs_purge(
    *,
    cutoff: dt.datetime,
    archive: Path | None,
    dry_run: bool = False,
    actor_username: str = "",
    progress: Progress | None = None,
    limit: int | None = None,
) -> PurgeReport:
    """Archive, check and delete the jobs ended before `cutoff` (see the module docstring).

    `archive` must not exist yet. With `dry_run` nothing is written or deleted: the report
    says what would go. `progress(stage, count)` is called as the work goes: "archived" (jobs
    written so far), "written" (the archive is complete and closed, before its check),
    "checked" and "purged" (jobs deleted so far). A failed write or check raises ArchiveError
    and deletes nothing. With a `limit`, the archive stops at the batch that reaches it (the
    newest of the old jobs first) and the report says `more`: a next run takes the older."""
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run, archive=archive)
    tell = progress or (lambda stage, count: None)
    kept: dict[uuid.UUID, str] = {}
    if dry_run:
        for batch in _candidates(cutoff):
            for record in job_records(_going(batch, cutoff, kept)):
                _count(report.rows, record)
                report.archived += 1
        report.kept.update(kept.values())
        return report
    if archive is None:
        raise ArchiveError("an archive path is needed")
    writer = _open(archive, cutoff)
    try:
        for batch in _candidates(cutoff):
            if limit is not None and writer.summary.jobs >= limit:
                report.more = True
                break
            for record in job_records(_going(batch, cutoff, kept)):
                writer.add(record)
            tell("archived", writer.summary.jobs)
        writer.close()
    except OSError as exc:
        writer.discard()
        raise ArchiveError(f"{archive}: cannot be written ({exc}); nothing deleted") from None
    except BaseException:
        writer.discard()
        raise
    report.kept.update(kept.values())
    report.archived = writer.summary.jobs
    report.rows = writer.summary.rows
    tell("written", report.archived)
    archive_check(archive, writer.summary)
    report.archive_sha256 = file_digest(archive)
    tell("checked", report.archived)
    try:
        batch = []
        for record in archive_records(archive):
            batch.append(record)
            if len(batch) == BATCH:
                _delete(batch, report)
                tell("purged", report.purged)
                batch = []
        if batch:
            _delete(batch, report)
            tell("purged", report.purged)
    finally:
        _audit(report, actor_username)
    return report


def _open(archive: Path, cutoff: dt.datetime) -> ArchiveWriter:
    try:
        return ArchiveWriter(archive, cutoff=cutoff, written_at=timezone.now())
    except FileExistsError:
        raise ArchiveError(f"{archive} exists already: an archive is never overwritten") from None
    except OSError as exc:
        raise ArchiveError(f"{archive}: cannot be written ({exc}); nothing deleted") from None


def _count(rows: Counter, record: dict[str, Any]) -> None:
    rows["jobs.job"] += 1
    for label, children in record["children"].items():
        rows[label] += len(children)


def _delete(records: list[dict[str, Any]], report: PurgeReport) -> None:
    """Delete a batch in one transaction; if another row still points at one of its rows,
    delete its jobs one by one instead, keeping those that cannot go."""
    try:
        _delete_batch(records, report)
    except models.ProtectedError:
        for record in records:
            try:
                _delete_batch([record], report)
            except models.ProtectedError:
                report.kept[KEPT_REFERENCED] += 1


def _delete_batch(records: list[dict[str, Any]], report: PurgeReport) -> None:
    archived = {uuid.UUID(record["id"]): record["sha256"] for record in records}
    kept: Counter = Counter()
    deleted: Counter = Counter()
    with transaction.atomic():
        jobs = {
            job.pk: job for job in Job.objects.select_for_update().filter(pk__in=list(archived))
        }
        now = {uuid.UUID(r["job"]["id"]): job_digest(r) for r in job_records(list(jobs))}
        same = {pk for pk in jobs if now.get(pk) == archived[pk]}
        kept[KEPT_CHANGED] += len(jobs) - len(same)
        for model in HOLDS:
            held = set(model.objects.filter(job_id__in=same).values_list("job_id", flat=True))
            kept[KEPT_HOLDS] += len(held)
            same -= held
        while True:
            retried = set(
                Job.objects.filter(retry_of__in=same)
                .exclude(pk__in=same)
                .values_list("retry_of_id", flat=True)
            )
            if not retried:
                break
            kept[KEPT_RETRIED] += len(retried)
            same -= retried
        children, _ = _relations()
        for fk in children:
            if fk.remote_field.on_delete is not models.CASCADE:
                _, counts = fk.model._default_manager.filter(**{f"{fk.name}__in": same}).delete()
                deleted.update(counts)
        remaining = set(same)
        while remaining:
            targets = set(
                Job.objects.filter(pk__in=remaining, retry_of__in=remaining).values_list(
                    "retry_of_id", flat=True
                )
            )
            _, counts = Job.objects.filter(pk__in=remaining - targets).delete()
            deleted.update(counts)
            remaining = targets
        count_jobs_removed(ended_job(jobs[pk]) for pk in same)
    report.purged += len(same)
    report.kept.update(+kept)
    report.deleted.update({label.lower(): count for label, count in deleted.items()})


def _audit(report: PurgeReport, actor_username: str) -> None:
    with transaction.atomic():
        audit_record(
            event=AuditEntry.Event.JOBS_PURGED,
            actor_username=actor_username,
            details={
                "cutoff": plain(report.cutoff),
                "archive": str(report.archive),
                "archive_sha256": report.archive_sha256,
                "archived": report.archived,
                "purged": report.purged,
                "rows_archived": dict(sorted(report.rows.items())),
                "rows_deleted": dict(sorted(report.deleted.items())),
                "kept": dict(sorted(report.kept.items())),
            },
        )
