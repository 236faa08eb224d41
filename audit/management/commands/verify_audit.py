import argparse
import datetime as dt
import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.anchor import anchor_holding, purged_through
from audit.export import export_open, exported_rows
from audit.models import AuditEntry
from audit.verify import seq_since, verify_rows
from audit.verify_parts import default_workers, verify_chain_at_once
from lib.argtypes import moment


def since(raw: str) -> int | dt.datetime:
    """A place in the chain (a whole number) or a moment (ISO date or date and time)."""
    if raw.strip().isdigit():
        return int(raw)
    try:
        return moment(raw)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is neither a seq (a whole number) nor a date: use 12345, YYYY-MM-DD "
            "or YYYY-MM-DDTHH:MM[:SS]"
        ) from None


def workers(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of processes (1 or more)")
    return int(raw)


def head(raw: str) -> tuple[int, str]:
    """A published head: SEQ:HASH, as verify_audit prints it."""
    seq, _, digest = raw.strip().partition(":")
    if not (seq.isdigit() and int(seq) >= 1 and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a head: use SEQ:HASH (a seq of 1 or more, 64 hex digits)"
        )
    return int(seq), digest


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chain and report the first entry whose content, order or "
        "link was changed, or that was removed: each entry's hash must be SHA-256 of the "
        "previous entry's hash and its own content, and the places (seq) must follow one "
        "another with no gap. Exits 1 naming the entry (id and seq) and what is wrong; on "
        "success prints the chain's head (seq and hash), which can be published elsewhere. "
        "--since starts from an entry (a seq, or the first entry written at or after a time), "
        "taking its stored link as given. --file checks an export_audit file instead. --head "
        "SEQ:HASH checks that a head published earlier is still in the chain, unchanged. "
        "After a purge (purge_audit) the chain starts at the anchor it recorded: the first "
        "kept entry must link to the last purged one; --file also reads a purge's gzip archive. "
        "--workers walks the chain in that many parts at once, one process each (default: "
        "the number of cores); the first break reported is the same."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=since, help="a seq, or a time (ISO 8601)")
        parser.add_argument("--file", type=Path, help="an export_audit JSON Lines file")
        parser.add_argument("--head", type=head, help="a head published earlier, SEQ:HASH")
        parser.add_argument(
            "--workers",
            type=workers,
            default=default_workers(),
            help="processes walking the chain at once (default: the number of cores)",
        )

    def handle(self, *, since, file, head, workers, **options):
        start = since
        if file is None and isinstance(since, int) and since > 1:
            self._refuse_purged(since, "--since")
        if since is not None and not isinstance(since, int):
            start = seq_since(since)
            if start is None:
                self.stdout.write(f"No audit entry written since {since.isoformat()}.")
                return
        if file is not None:
            try:
                with export_open(file) as lines:
                    rows = list(exported_rows(lines))
            except (OSError, EOFError, ValueError) as exc:
                raise CommandError(f"{file}: {exc}") from None
            if start is not None:
                rows = [row for row in rows if row[1] >= start]
            verdict = verify_rows(rows, from_start=bool(rows) and rows[0][1] == 1)
        else:
            verdict = verify_chain_at_once(since_seq=start, workers=workers)
        if not verdict.ok:
            raise CommandError(
                f"Audit chain broken at {verdict.broken}. "
                f"{verdict.checked} entries before it verified."
            )
        if head is not None:
            self._check_head(*head, file=file)
        if not verdict.checked:
            self.stdout.write("No audit entry to verify.")
            return
        self.stdout.write(
            f"Audit chain intact: {verdict.checked} entries verified, seq {verdict.first_seq} "
            f"to {verdict.head_seq}. Head: seq {verdict.head_seq} hash {verdict.head_hash}"
        )

    def _check_head(self, seq: int, digest: str, *, file: Path | None) -> None:
        if file is not None:
            with export_open(file) as lines:
                found = [row[9] for row in exported_rows(lines) if row[1] == seq]
        else:
            found = list(AuditEntry.objects.filter(seq=seq).values_list("hash", flat=True))
            if not found:
                self._refuse_purged(seq, "--head")
        if not found:
            raise CommandError(
                f"The published head seq {seq} is not in the chain: entries were removed from "
                "its end, or the chain was rebuilt."
            )
        if found[0] != digest:
            raise CommandError(
                f"Entry seq {seq} has hash {found[0]}, not the published {digest}: the history "
                "up to it was rewritten."
            )

    def _refuse_purged(self, seq: int, option: str) -> None:
        """Entry `seq` was purged (purge_audit): say which archive holds it, instead of a
        missing entry or a walk from the wrong place."""
        anchor = anchor_holding(seq)
        if anchor is None:
            return
        first_kept = purged_through().last_seq + 1
        raise CommandError(
            f"Entry seq {seq} ({option}) was purged, with seq {anchor.first_seq} to "
            f"{anchor.last_seq}, into the archive {anchor.archive} (SHA-256 "
            f"{anchor.archive_sha256}): check it with --file on that archive. The database's "
            f"chain starts at seq {first_kept}, linked to the last purged entry (the anchor): "
            f"verify it without --since, or from --since {first_kept}."
        )
