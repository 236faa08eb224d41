from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs.services import ArchiveError, jobs_purge
from lib.argtypes import positive_int


class Command(BaseCommand):
    help = (
        "Archives and deletes the jobs that ended more than --older-than days ago. The rule: a "
        "job goes when its status is final (SUCCESS, FAILED, UNKNOWN, CANCELLED, DENIED or "
        "EXPIRED) and it ended before the cutoff; a job in progress, held, pending approval, "
        "still holding a token or call slot, or retried by a job that stays, never goes. Each "
        "job is written with its customers and the rows hanging off it to --archive, a gzip "
        "JSON Lines file that must not exist yet; the file is read back and checked (counts "
        "and each job's SHA-256) and only then are the jobs deleted, 500 per short "
        "transaction, each only if unchanged since it was archived. One jobs.purged audit "
        "entry records the counts, the cutoff and the archive's SHA-256. With --dry-run "
        "nothing is written or deleted: it says what would go. restore_jobs brings jobs back."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=positive_int,
            required=True,
            metavar="DAYS",
            help="Purge the jobs that ended more than this many days ago.",
        )
        parser.add_argument(
            "--archive", type=Path, metavar="PATH", help="The archive file to write (new)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Write and delete nothing; say what would go."
        )

    def handle(self, *, older_than: int, archive: Path | None, dry_run: bool, **options) -> None:
        if archive is None and not dry_run:
            raise CommandError("--archive PATH is needed (or --dry-run).")
        cutoff = timezone.now() - dt.timedelta(days=older_than)

        def progress(stage: str, count: int) -> None:
            self.stdout.write(f"{stage}: {count} job(s)")

        try:
            report = jobs_purge(
                cutoff=cutoff,
                archive=None if dry_run else archive,
                dry_run=dry_run,
                actor_username="purge_jobs",
                progress=progress,
            )
        except ArchiveError as exc:
            raise CommandError(f"{exc}. Nothing was deleted.") from None
        if report.archive_sha256:
            self.stdout.write(f"archive SHA-256: {report.archive_sha256}")
        self.stdout.write(str(report))
