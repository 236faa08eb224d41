from __future__ import annotations

import getpass
import os
import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from jobs.csvinput import csv_read_cids
from jobs.models import Job
from jobs.services import job_submit
from lib.outage import PASSING

REFUSED = 3
UNAVAILABLE = 4
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Runs a Set Action through the same service as the web page: one job, or one per "
        "chunk of the cluster's max_cids_per_request. The token comes from the TMS_TOKEN "
        "environment variable or a hidden prompt, never from an argument. Prints the job ids, "
        "one per line. With --wait, waits for the jobs to end (through their approval, when a "
        "rule makes them wait for one), prints each one's status, HTTP status and error, and "
        "exits 0 when all succeeded, 1 when any failed or was denied or expired unapproved, 2 "
        "when any ended UNKNOWN. Refused input exits 3 and writes nothing; so does a database "
        "that refuses work (locked, unreachable, disk full), with 4."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="The operator's username.")
        parser.add_argument("--action", required=True, help="1-5 or a name, e.g. PE-Enable.")
        parser.add_argument("--cluster", required=True, help="The cluster's name.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--cids", help='Customer IDs separated by commas or spaces: "A,B C".')
        source.add_argument("--csv", type=Path, help="A CSV file of customer IDs.")
        parser.add_argument("--idempotency-key", help="Running again with it changes nothing.")
        parser.add_argument("--wait", action="store_true", help="Wait for the jobs to end.")

    def handle(self, *, user, action, cluster, cids, csv, idempotency_key, wait, **options):
        operator = get_user_model().objects.filter(username=user, is_active=True).first()
        if operator is None:
            raise CommandError(f"No active user {user!r}.", returncode=REFUSED)
        positions = None
        if csv is not None:
            try:
                cids, positions = csv_read_cids(csv.read_bytes())
            except OSError as exc:
                raise CommandError(
                    f"Cannot read {csv}: {exc.strerror}.", returncode=REFUSED
                ) from None
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages), returncode=REFUSED) from None
        try:
            jobs = job_submit(
                user=operator,
                action=action,
                cluster=cluster,
                cids=cids,
                cid_positions=positions,
                token=self.read_token(),
                idempotency_key=idempotency_key,
            )
        except (ValidationError, PermissionDenied) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError(" ".join(messages), returncode=REFUSED) from None
        except PASSING as exc:
            first_line = str(exc).strip().partition("\n")[0]
            raise CommandError(
                f"The database refused the submit ({first_line}): nothing was submitted. "
                "Run it again once the database is back.",
                returncode=UNAVAILABLE,
            ) from None
        for job in jobs:
            self.stdout.write(str(job.pk))
        if wait:
            sys.exit(self.wait_for([job.pk for job in jobs]))

    def read_token(self) -> str:
        if token := os.environ.get("TMS_TOKEN"):
            return token
        if not sys.stdin.isatty():
            raise CommandError(
                "Set TMS_TOKEN or run in a terminal to be asked for the token.", returncode=REFUSED
            )
        return getpass.getpass("Cluster API token: ")

    def wait_for(self, job_ids: list) -> int:
        waiting = [Job.Status.IN_PROGRESS, Job.Status.PENDING_APPROVAL]
        while Job.objects.filter(pk__in=job_ids, status__in=waiting).exists():
            time.sleep(POLL_SECONDS)
        jobs = Job.objects.filter(pk__in=job_ids).order_by("batch_seq")
        for job in jobs:
            http = f"HTTP {job.http_status}" if job.http_status else "no HTTP status"
            line = f"{job.pk} {job.status} {http}"
            self.stdout.write(f"{line} {job.error_message}".rstrip())
        statuses = {job.status for job in jobs}
        if Job.Status.UNKNOWN in statuses:
            return 2
        if statuses & {Job.Status.FAILED, Job.Status.DENIED, Job.Status.EXPIRED}:
            return 1
        return 0
