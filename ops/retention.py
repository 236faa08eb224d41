"""The daily purge of old jobs (jobs.services.retention), when TMS_RETENTION_DAYS and
TMS_ARCHIVE_DIR are both set: once a day across every host, the first housekeeping pass of the
day (in TIME_ZONE) to claim the run (ops.daily) runs it, into
TMS_ARCHIVE_DIR/jobs-YYYYMMDDTHHMMSSZ.jsonl.gz (the time of the run, UTC). A pass purges at
most PASS_LIMIT jobs; a larger backlog is taken by the next passes, an archive each."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings

from jobs.services import ArchiveError, PurgeReport, jobs_purge
from ops.daily import daily_claim, daily_release

logger = logging.getLogger(__name__)

RUN_NAME = "retention"
# Jobs archived and deleted by one housekeeping pass (about 40 s on SQLite, docs/performance.md):
# housekeeping's other work (reaping, approvals' deadlines) waits for the pass. A backlog
# larger than this (the first run after TMS_RETENTION_DAYS is set) goes over the next passes.
PASS_LIMIT = 20_000


def retention_pass(*, now: dt.datetime) -> PurgeReport | None:
    """Purge the jobs ended more than TMS_RETENTION_DAYS ago, if both settings are set and
    this is the day's first pass to claim the run; the report, or None if it did not run."""
    days, folder = settings.TMS_RETENTION_DAYS, settings.TMS_ARCHIVE_DIR
    if not days or folder is None or not daily_claim(RUN_NAME, now=now):
        return None
    archive = folder / f"jobs-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.jsonl.gz"
    try:
        report = jobs_purge(
            cutoff=now - dt.timedelta(days=days),
            archive=archive,
            actor_username="housekeeping",
            limit=PASS_LIMIT,
        )
    except ArchiveError:
        logger.exception("retention: the purge stopped before deleting anything")
        return None
    logger.info("retention: %s", report)
    if report.more:
        # Today's run is not done: the next pass, on whichever host, claims it again.
        daily_release(RUN_NAME, now=now)
    return report
