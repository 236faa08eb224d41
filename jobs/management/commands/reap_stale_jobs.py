from __future__ import annotations

from django.core.management.base import BaseCommand

from jobs.services import job_reap_stale


class Command(BaseCommand):
    help = (
        "Ends the jobs that nothing else will end, without calling any cluster. A started job "
        "still in progress longer than its cluster's timeout plus TMS_REAP_GRACE becomes "
        "UNKNOWN (the cluster may have applied it: check before retrying). A job that no "
        "worker started within TMS_QUEUE_EXPIRY becomes FAILED (not started). Each change is "
        "audited; running it again changes nothing more. Run it every minute (cron)."
    )

    def handle(self, **options) -> None:
        report = job_reap_stale()
        for job_id in report.unknown:
            self.stdout.write(f"{job_id} UNKNOWN (interrupted)")
        for job_id in report.expired:
            self.stdout.write(f"{job_id} FAILED (not started)")
        self.stdout.write(
            f"reap_stale_jobs: {len(report.unknown)} interrupted job(s) marked UNKNOWN, "
            f"{len(report.expired)} unstarted job(s) marked FAILED."
        )
