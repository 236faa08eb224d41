from __future__ import annotations

import argparse
import datetime as dt
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from legacy.dedupe import DEFAULT_WINDOW, DedupeReport, DuplicateGroup, job_dedupe
from lib.argtypes import moment, seconds


def _when(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class Command(BaseCommand):
    help = (
        "Finds jobs duplicated by the legacy page's double-submit bug and, with --apply, "
        "removes the copies. The rule: jobs are duplicates when they have the same operator, "
        "action, cluster URL (trailing slashes ignored) and set of customers (order and repeats "
        "ignored) and were created within --window seconds of the first job of their group. "
        "One job per group is kept: the one the server created (it has an HTTP status), else "
        "the one whose summary is not the page's 'Successfully processed N customer(s)', else "
        "the earliest. A job in progress, or one that another job retries, is never removed. "
        "Only jobs without an idempotency key are considered unless --include-keyed is given. "
        "Without --apply nothing changes: each group is listed (kept id, removed ids, gap in "
        "seconds) with totals. With --apply each copy is removed in a transaction with a "
        "job.deduplicated audit entry holding the whole job and the kept id."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--window",
            type=seconds(),
            default=DEFAULT_WINDOW,
            metavar="SECONDS",
            help=f"Largest gap from the group's first job (default {DEFAULT_WINDOW:g}).",
        )
        parser.add_argument(
            "--since",
            type=moment,
            metavar="DATE",
            help="Only jobs created at or after this (YYYY-MM-DD or an ISO date and time; "
            "without an offset, in TIME_ZONE).",
        )
        parser.add_argument(
            "--until",
            type=moment,
            metavar="DATE",
            help="Only jobs created before this (a date means its midnight: "
            "--since 2026-01-29 --until 2026-01-30 is that one day).",
        )
        parser.add_argument("--user", metavar="NAME", help="Only this operator's jobs.")
        parser.add_argument(
            "--include-keyed",
            action="store_true",
            help="Also consider jobs with an idempotency key.",
        )
        parser.add_argument(
            "--apply", action="store_true", help="Remove the copies (default: only report)."
        )

    def handle(
        self,
        *,
        window: float,
        since: dt.datetime | None,
        until: dt.datetime | None,
        user: str | None,
        include_keyed: bool,
        apply: bool,
        **options,
    ) -> None:
        if since is not None and until is not None and since >= until:
            raise CommandError("--since must be earlier than --until.")
        user_id = None
        if user is not None:
            User = get_user_model()
            user_id = (
                User.objects.filter(**{User.USERNAME_FIELD: user})
                .values_list("pk", flat=True)
                .first()
            )
            if user_id is None:
                raise CommandError(f"There is no user named {user!r}.")
        tty = self.stdout.isatty()
        report = job_dedupe(
            window=window,
            since=since,
            until=until,
            user_id=user_id,
            include_keyed=include_keyed,
            apply=apply,
            on_group=self._print_group,
            scanned=self._progress if tty else None,
        )
        if tty:
            self.stdout.write("")
        self._print_totals(report, window)

    def _progress(self, count: int) -> None:
        self.stdout.write(f"\rscanned {count:,} jobs", ending="")
        self.stdout.flush()

    def _print_group(self, group: DuplicateGroup, removed: list[uuid.UUID]) -> None:
        if self.stdout.isatty():
            # Back to the start of the progress line and clear it.
            self.stdout.write("\r\x1b[K", ending="")
        self.stdout.write(
            f"{group.username} | {group.action_label} | {group.cluster_url or '(no cluster)'} | "
            f"{group.customer_count} customer(s)"
        )
        self.stdout.write(f"  keep    {group.kept_id}  {_when(group.kept_created_at)}")
        done = set(removed)
        for pk, gap in group.removed:
            verb = "removed" if pk in done else "remove"
            self.stdout.write(f"  {verb:<7} {pk}  {gap:+.3f} s")
        for pk, reason in group.left:
            self.stdout.write(f"  leave   {pk}  ({reason})")

    def _print_totals(self, report: DedupeReport, window: float) -> None:
        self.stdout.write(
            f"Scanned {report.jobs_scanned} jobs (window {window:g} s): {report.groups} "
            f"duplicate groups, {report.duplicates} copies"
            + (f", {report.left} copies that may not be removed" if report.left else "")
        )
        if report.changed:
            self.stdout.write(
                f"{report.changed} copies changed since they were found and were left."
            )
        if not report.duplicates:
            self.stdout.write("dedupe_jobs: no duplicates to remove.")
        elif report.apply:
            self.stdout.write(
                f"dedupe_jobs: removed {report.removed} duplicate jobs in {report.groups} groups."
            )
        else:
            self.stdout.write(
                f"dedupe_jobs (preview, nothing removed): {report.duplicates} duplicate jobs in "
                f"{report.groups} groups would be removed; run again with --apply to remove them."
            )
