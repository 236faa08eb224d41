from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ops.backup import BackupError, PostgresCommands, database_backup


class Command(BaseCommand):
    help = (
        "SQLite: copy the database to --to with SQLite's online backup, safe while the dashboard "
        "runs (the copy holds every transaction committed before it began), check the copy "
        "with PRAGMA integrity_check, and print its size and the time taken. The copy is "
        "written under a temporary name beside --to and renamed only once checked: a failure "
        "(missing directory, full disk) leaves nothing. An existing --to is refused without "
        "--force. PostgreSQL: write nothing and print the pg_dump and pg_restore commands for "
        "DATABASE_URL (without its password). The procedure: docs/backup.md."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--to", required=True, type=Path, help="The backup file to write.")
        parser.add_argument(
            "--force", action="store_true", help="Replace --to if it exists (SQLite)."
        )

    def handle(self, *, to: Path, force: bool, **options) -> None:
        try:
            result = database_backup(to=to, force=force)
        except BackupError as error:
            raise CommandError(str(error)) from error
        if isinstance(result, PostgresCommands):
            self.stdout.write(
                "PostgreSQL: nothing written; pg_dump is the tool. Give the password with "
                "PGPASSWORD or ~/.pgpass.\n"
                f"Back up:\n  {result.dump}\n"
                f"Restore (into a new, empty database):\n  {result.create}\n  {result.restore}"
            )
            return
        self.stdout.write(
            f"Backed up to {result.path}: {result.size / 1_000_000:.1f} MB "
            f"({result.size} bytes) in {result.seconds:.2f} s; integrity_check ok."
        )
