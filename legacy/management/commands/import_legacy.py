from __future__ import annotations

import argparse
import zoneinfo
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from legacy.importer import LegacyFileError, LegacyImportReport, legacy_import
from lib.argtypes import time_zone


def _reasons(skipped: dict[str, int]) -> str:
    return "; ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))


class Command(BaseCommand):
    help = (
        "Imports the legacy dashboard's jobs.db (and, with --audit-db, audit.db) into the "
        "dashboard. The files are opened read-only; every schema generation is understood. "
        "Job ids are kept (an id that is not a UUID gets a fixed uuid5 and stays in legacy_id); "
        "operators without an account get an inactive account with no usable password; "
        "tokens and passwords in payloads and audit details are stripped. Safe to run again: "
        "what is already imported, and jobs that dedupe_jobs removed, are skipped, and an "
        "interrupted run finishes the rest. --dry-run writes nothing and reports what it would do."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--jobs-db", required=True, type=Path, metavar="PATH", help="The legacy jobs.db."
        )
        parser.add_argument(
            "--audit-db", type=Path, metavar="PATH", help="The legacy audit.db (optional)."
        )
        parser.add_argument(
            "--timezone",
            type=time_zone,
            metavar="ZONE",
            help="The legacy server's local time zone, for times it wrote without an offset "
            "(default: TIME_ZONE). CURRENT_TIMESTAMP text is UTC whatever this says.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Write nothing; report what would be done."
        )

    def handle(
        self,
        *,
        jobs_db: Path,
        audit_db: Path | None,
        timezone: zoneinfo.ZoneInfo | None,
        dry_run: bool,
        **options,
    ) -> None:
        try:
            report = legacy_import(
                jobs_db=jobs_db,
                audit_db=audit_db,
                tz=timezone,
                dry_run=dry_run,
                progress=self._progress if self.stdout.isatty() else None,
            )
        except LegacyFileError as exc:
            raise CommandError(str(exc)) from None
        if self.stdout.isatty():
            self.stdout.write("")
        self._print(report)

    def _progress(self, label: str, done: int, total: int) -> None:
        self.stdout.write(f"\r{label}: {done:,} of {total:,} read", ending="")
        self.stdout.flush()

    def _print(self, report: LegacyImportReport) -> None:
        would = "would be " if report.dry_run else ""
        self.stdout.write(f"Legacy jobs file: schema generation {report.generation}")
        self.stdout.write(
            f"Jobs: {report.jobs_read} read, {report.jobs_imported} {would}imported, "
            f"{report.jobs_present} already present, "
            f"{sum(report.jobs_skipped.values())} skipped"
        )
        if report.jobs_skipped:
            self.stdout.write(f"  skipped: {_reasons(report.jobs_skipped)}")
        self.stdout.write(
            f"Customers: {report.customers_imported} {would}imported; blank or repeated CIDs "
            f"dropped: {report.cids_dropped}; rows skipped because their job does not exist: "
            f"{report.orphan_customer_rows}"
        )
        if report.users_created:
            self.stdout.write(
                f"Users {would}created (inactive, no usable password): "
                + ", ".join(report.users_created)
            )
        if report.audit_read or report.audit_skipped:
            self.stdout.write(
                f"Audit entries: {report.audit_read} read, {report.audit_imported} {would}"
                f"imported, {report.audit_present} already present, "
                f"{sum(report.audit_skipped.values())} skipped"
            )
            if report.audit_skipped:
                self.stdout.write(f"  skipped: {_reasons(report.audit_skipped)}")
        self.stdout.write(self._summary(report))

    def _summary(self, report: LegacyImportReport) -> str:
        prefix = "import_legacy (dry run, nothing written)" if report.dry_run else "import_legacy"
        skipped = sum(report.jobs_skipped.values()) + sum(report.audit_skipped.values())
        if not report.imported_anything:
            return (
                f"{prefix}: nothing to import; {report.jobs_present} jobs and "
                f"{report.audit_present} audit entries already present, {skipped} skipped."
            )
        verb = "would import" if report.dry_run else "imported"
        summary = (
            f"{prefix}: {verb} {report.jobs_imported} jobs ({report.customers_imported} "
            f"customers) and {report.audit_imported} audit entries, {skipped} skipped"
        )
        if not report.complete:
            summary += "; stopped before the end, run it again to import the rest"
        return summary + "."
