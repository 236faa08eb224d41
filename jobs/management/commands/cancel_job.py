from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from jobs.services import job_cancel
from lib.argtypes import job_id


class Command(BaseCommand):
    help = (
        "Cancels queued jobs: each one not yet sent to its cluster ends CANCELLED, its "
        "customers released, audited as cancelled by a maintainer. A job a worker already "
        "started, or one that has ended, is left as it is and named. Exits 1 when any job was "
        "not cancelled."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("job_ids", nargs="+", type=job_id, metavar="JOB_ID")

    def handle(self, *, job_ids: list[uuid.UUID], **options) -> None:
        report = job_cancel(job_ids=job_ids)
        for cancelled in report.cancelled:
            self.stdout.write(f"{cancelled} CANCELLED")
        for refused, reason in report.refused.items():
            self.stdout.write(f"{refused} not cancelled: {reason}")
        if report.refused:
            raise CommandError(f"{len(report.refused)} job(s) not cancelled.")
