from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.export import export_lines
from audit.verify import seq_since
from lib.argtypes import moment


class Command(BaseCommand):
    help = (
        "Write the audit trail as JSON Lines, one entry a line with its place in the hash "
        "chain (seq), the previous entry's hash and its own: from the first entry written at "
        "or after --since (and every entry after it in the chain) to the head, to --to PATH "
        "or to standard output. `verify_audit --file PATH` checks such a file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=moment, help="a time (ISO 8601); default: all")
        parser.add_argument("--to", type=Path, help="the file to write (default: stdout)")

    def handle(self, *, since, to, **options):
        start = 1 if since is None else seq_since(since)
        if start is None:
            written, last = 0, 0
            if to is not None:
                to.write_text("", encoding="utf-8")
        elif to is None:
            written, last = export_lines(self.stdout, since_seq=start)
        else:
            try:
                with to.open("w", encoding="utf-8") as out:
                    written, last = export_lines(out, since_seq=start)
            except OSError as exc:
                raise CommandError(f"{to}: {exc.strerror}") from None
        summary = f"{written} audit entries exported" + (f", to seq {last}" if written else "")
        (self.stderr if to is None else self.stdout).write(summary + ".")
