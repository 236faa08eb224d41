from __future__ import annotations

from django.core.management.base import BaseCommand

from ops.token_keys import token_key_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (clusters' stored credentials, the tokens of jobs not "
        "yet ended, webhook endpoints' signing secrets) with the first key of TMS_TOKEN_KEY, "
        "where another of its comma-separated keys encrypted it, and print how many of each "
        "were re-encrypted, already current, or unreadable by every key (left as they are). "
        "Audited (token_key.rotated). Safe to run twice and while the dashboard runs. "
        "--dry-run counts and changes nothing. The procedure: docs/credentials.md."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be re-encrypted; write nothing.",
        )

    def handle(self, *, dry_run: bool, **options) -> None:
        report = token_key_rotate(dry_run=dry_run)
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        for counts in report:
            self.stdout.write(
                f"{counts.name}: {counts.rotated} {verb}, {counts.current} already current, "
                f"{counts.unreadable} unreadable"
            )
        rotated = sum(counts.rotated for counts in report)
        unreadable = sum(counts.unreadable for counts in report)
        self.stdout.write(
            f"{'Dry run: ' if dry_run else ''}{rotated} secret(s) {verb}"
            + (f"; {unreadable} unreadable by every key" if unreadable else "")
            + "."
        )
