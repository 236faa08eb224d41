"""The daily purge of old audit entries (audit.retention), when TMS_AUDIT_RETENTION_DAYS and
TMS_ARCHIVE_DIR are both set: once a day across every host, the first housekeeping pass of the
day (in TIME_ZONE) to claim its run (ops.daily) runs it, into
TMS_ARCHIVE_DIR/audit-YYYYMMDDTHHMMSSZ.jsonl.gz (the time of the run, UTC). A pass purges at
most PASS_LIMIT entries; a larger backlog is taken by the next passes, an archive each."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings

from audit.retention import AuditArchiveError, AuditPurgeReport, audit_purge
from ops.daily import daily_claim, daily_release

logger = logging.getLogger(__name__)

RUN_NAME = "audit_retention"
# Audit entries archived and deleted by one housekeeping pass: housekeeping's other work waits
# for the pass. A larger backlog (the first run after the setting is set) goes over the next.
PASS_LIMIT = 50_000


def audit_retention_pass(*, now: dt.datetime) -> AuditPurgeReport | None:
    """Purge the audit entries written more than TMS_AUDIT_RETENTION_DAYS ago, if both
    settings are set and this is the day's first pass to claim the run; the report, or None
    if it did not run."""
    days, folder = settings.TMS_AUDIT_RETENTION_DAYS, settings.TMS_ARCHIVE_DIR
    if not days or folder is None or not daily_claim(RUN_NAME, now=now):
        return None
    archive = folder / f"audit-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.jsonl.gz"
    try:
        report = audit_purge(
            cutoff=now - dt.timedelta(days=days),
            archive=archive,
            actor_username="housekeeping",
            limit=PASS_LIMIT,
        )
    except AuditArchiveError:
        logger.exception("audit retention: the purge stopped before deleting anything more")
        return None
    logger.info("audit retention: %s", report)
    if report.more:
        # Today's run is not done: the next pass, on whichever host, claims it again.
        daily_release(RUN_NAME, now=now)
    return report
