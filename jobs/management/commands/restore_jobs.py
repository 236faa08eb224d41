from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.services import (
    ArchiveError,
    RestoreError,
    RestoreReport,
    job_restore_deduplicated,
    jobs_restore,
)
from lib.argtypes import job_id


class Command(BaseCommand):
    help = (
        "Brings back jobs exactly as they were (ids, times, statuses, customers, outcomes, "
        "links between retries): with --archive, those of a purge_jobs archive (all, or the "
        "--job ids given), after checking the whole archive and each job's SHA-256; with "
        "--deduplicated ID, the job dedupe_jobs --apply removed, from its job.deduplicated "
        "audit entry. A job that exists is never overwritten: it is skipped and named, so "
        "restoring twice changes nothing. A job pointing at a row gone since (its operator, "
        "cluster...) is skipped and named; a retry whose job is neither there nor restored "
        "with it comes back without that link. Audited as jobs.restored."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--archive", type=Path, metavar="PATH", help="A purge_jobs archive.")
        source.add_argument(
            "--deduplicated",
            type=job_id,
            metavar="ID",
            help="The id of a job dedupe_jobs --apply removed.",
        )
        parser.add_argument(
            "--job",
            type=job_id,
            action="append",
            dest="job_ids",
            metavar="ID",
            help="Only this job of the archive (repeat for more).",
        )

    def handle(
        self,
        *,
        archive: Path | None,
        deduplicated: uuid.UUID | None,
        job_ids: list[uuid.UUID] | None,
        **options,
    ) -> None:
        if deduplicated is not None and job_ids:
            raise CommandError("--job goes with --archive, not --deduplicated.")
        try:
            if deduplicated is not None:
                report = job_restore_deduplicated(
                    job_id=deduplicated, actor_username="restore_jobs"
                )
            else:
                report = jobs_restore(
                    archive=archive,
                    job_ids=job_ids,
                    actor_username="restore_jobs",
                    progress=lambda count: self.stdout.write(f"restored: {count} job(s)"),
                )
        except (ArchiveError, RestoreError) as exc:
            raise CommandError(f"{exc}. Nothing was restored.") from None
        self._details(report)
        self.stdout.write(str(report))

    def _details(self, report: RestoreReport) -> None:
        for pk in report.existing:
            self.stdout.write(f"{pk}: exists already, left as it is")
        for pk, why in report.missing:
            self.stdout.write(f"{pk}: skipped, {why}")
        for pk, target in report.unlinked:
            self.stdout.write(f"{pk}: restored without its link to {target} (not there)")
        for pk in report.not_in_archive:
            self.stdout.write(f"{pk}: not in the archive")
