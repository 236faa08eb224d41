from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.retention import BATCH, AuditArchiveError, audit_purge
from lib.argtypes import positive_int


class Command(BaseCommand):
    help = (
        "Archives and deletes the audit entries written more than --older-than days ago. The "
        "rule: the chain's oldest entries go, in seq order, up to the first entry written at "
        "or after the cutoff (only a beginning of the chain can go: an entry imported later "
        "with an older time stays until those before it go). They are written to --archive, a "
        "gzip JSON Lines file in export_audit's format that must not exist yet (verify_audit "
        "--file checks it alone); the file is read back and checked (its chain linked from "
        "the chain's start, the count, the first and last seq, its SHA-256) and only then are "
        f"the entries deleted, {BATCH} per short transaction, oldest first, each batch only if "
        "still the archived entries. The chain then starts at an anchor (the last purged "
        "entry's seq and hash) that verify_audit checks the first kept entry against. One "
        "audit.purged entry records the counts, the seq range and the archive's SHA-256. With "
        "--dry-run nothing is written or deleted: it says what would go. Purged entries are "
        "not restored: the archive is their record."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=positive_int,
            required=True,
            metavar="DAYS",
            help="Purge the audit entries written more than this many days ago.",
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
            self.stdout.write(f"{stage}: {count} audit entries")

        try:
            report = audit_purge(
                cutoff=cutoff,
                archive=None if dry_run else archive,
                dry_run=dry_run,
                actor_username="purge_audit",
                progress=progress,
            )
        except AuditArchiveError as exc:
            raise CommandError(f"{exc}. Nothing more was deleted.") from None
        if report.archive_sha256:
            self.stdout.write(f"archive SHA-256: {report.archive_sha256}")
        self.stdout.write(str(report))
