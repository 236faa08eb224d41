"""The scheduler pass: for every due occurrence of every active schedule, decide once, across
every host and process, whether it fires, is skipped, fails or is queued, and fire it.

Exactly one fire per occurrence: each decision starts by inserting the occurrence's row,
unique per (schedule, occurs_at), in the transaction that submits its run. The process whose
insert wins decides; every other one gets an IntegrityError and moves on. The run's
idempotency key ("schedule:<id>:<occurs_at>") is a second guard in jobs.services.job_submit.

The rules, in the order they apply to one schedule in one pass at `now`:

1. An occurrence queued behind an unfinished run fires once that run ended (QUEUED to FIRED by
   compare-and-set).
2. The occurrences due since the schedule was last looked at (`checked_through`, never more
   than LOOKBACK back) are each decided: all but the latest are skipped as missed (the latest
   MISSED_RECORDED of them recorded, the rest counted in one audit entry); the latest fires
   when it is less than ON_TIME late, or, when the schedule says `missed: run_latest`, less
   than its `grace_seconds` late; otherwise it is skipped as missed.
3. An occurrence to fire while a run the schedule made is still IN_PROGRESS or
   PENDING_APPROVAL is skipped (`overlap: skip`) or queued behind it (`overlap: queue`, one
   queued at most; another is skipped).
4. It is submitted as a normal Set Action by the schedule's owner with the cluster's stored
   credential (`job_submit(stored_credential=True, unattended=True)`): the same checks as any
   submit (run grant, active cluster, customers busy) and the same approval rules apply. A
   refusal records the occurrence FAILED with the reason, audited and notified; a change
   freeze over the cluster records it SKIPPED with the freeze as the reason, notifying no one.
5. A run an approval rule covers goes out without a request of its own when the schedule's
   current version was approved as the rule requires (schedules.services.approvals), and
   fails, saying it waits for approval, when it was not; a `per_run` rule makes each run wait
   for its own request (PENDING_APPROVAL), as any submit.

A schedule whose rule or zone no longer parses is paused, with a FAILED occurrence saying why.
Whatever goes wrong with one schedule is logged and recorded for it alone; the pass goes on
with the others. A database that is away ends the pass (housekeeping rides it out and makes
the pass again: what was recorded stays, what was not is decided again).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Job
from jobs.services import Frozen, job_submit
from lib.outage import PASSING
from lib.recurrence import RecurrenceError, occurrences, zone
from schedules.models import MAX_GRACE_SECONDS, Occurrence, SavedSetAction, Schedule
from schedules.services.approvals import schedule_approval_state
from schedules.signals import occurrence_failed

logger = logging.getLogger(__name__)

Event = AuditEntry.Event
State = Occurrence.State

# An occurrence the scheduler sees less than this late is on time, whatever the schedule says
# of missed ones: passes run every TMS_SCHEDULER_SECONDS, so only an outage makes one later.
ON_TIME = timedelta(seconds=60)
# Missed occurrences older than this are not even counted: none could fire any more (a grace
# is at most as long), and a rule that fires every minute would otherwise be walked through
# for every minute of a long outage.
LOOKBACK = timedelta(seconds=MAX_GRACE_SECONDS)
# The missed occurrences before the latest recorded one row each: the most recent few.
MISSED_RECORDED = 5
# A run the schedule made that still holds its place: the next occurrence overlaps it.
UNFINISHED = [Job.Status.IN_PROGRESS, Job.Status.PENDING_APPROVAL]


@dataclass
class SchedulerReport:
    fired: int = 0
    skipped: int = 0
    failed: int = 0
    queued: int = 0
    errors: list[int] = field(default_factory=list)

    def count(self, state: str) -> None:
        setattr(self, state, getattr(self, state) + 1)

    @property
    def changed_anything(self) -> bool:
        return bool(self.fired or self.skipped or self.failed or self.queued or self.errors)

    def __str__(self) -> str:
        text = (
            f"{self.fired} scheduled run(s) fired, {self.skipped} skipped, {self.failed} "
            f"failed, {self.queued} queued behind their previous run"
        )
        if self.errors:
            text += f", {len(self.errors)} schedule(s) in error (see the log)"
        return text


def scheduler_pass(*, now: datetime) -> SchedulerReport:
    """Decide and fire every due occurrence of every schedule not paused, as of `now`. Safe to
    run from any number of processes and hosts at once: each occurrence is decided once."""
    report = SchedulerReport()
    # One query for all: most passes find no occurrence queued anywhere.
    queued = set(
        Occurrence.objects.filter(state=State.QUEUED).values_list("schedule_id", flat=True)
    )
    for schedule_id in (
        Schedule.objects.filter(paused=False).order_by("pk").values_list("pk", flat=True)
    ):
        try:
            _schedule_pass(schedule_id, now, report, queued=schedule_id in queued)
        except PASSING:
            raise
        except Exception:
            # One broken schedule never stops the others.
            logger.exception("schedule %s: the scheduler pass failed", schedule_id)
            report.errors.append(schedule_id)
    return report


def _schedule_pass(
    schedule_id: int, now: datetime, report: SchedulerReport, *, queued: bool
) -> None:
    schedule = (
        Schedule.objects.select_related("saved_set_action", "owner")
        .filter(pk=schedule_id, paused=False)
        .first()
    )
    if schedule is None:
        return
    if queued:
        _fire_queued(schedule, now, report)
    try:
        due, count = _due(schedule, now)
    except RecurrenceError as exc:
        _broken(schedule, now, str(exc), report)
        return
    if not due:
        return
    *earlier, latest = due
    reason = f"missed: a later occurrence ({_utc(latest)}) was due when the scheduler ran"
    for occurs_at in earlier:
        _record(schedule, occurs_at, now, State.SKIPPED, reason, report)
    uncounted = count - len(due)
    summary = None
    if uncounted:
        summary = {
            "schedule": schedule.pk,
            "missed": count - 1,
            "recorded": len(earlier),
            "until": latest.isoformat(),
            "counted_since": max(schedule.checked_through, now - LOOKBACK).isoformat(),
        }
    late = now - latest
    grace = timedelta(seconds=schedule.grace_seconds)
    run_late = schedule.missed == Schedule.Missed.RUN_LATEST
    if late < ON_TIME or (run_late and late < grace):
        _fire_new(schedule, latest, now, report, summary)
    else:
        why = f"missed: {_duration(late)} late, " + (
            f"more than the {_duration(grace)} grace"
            if run_late
            else "and the schedule skips missed runs"
        )
        _record(schedule, latest, now, State.SKIPPED, why, report, summary=summary)
    Schedule.objects.filter(pk=schedule.pk, checked_through__lt=now).update(checked_through=now)


def _due(schedule: Schedule, now: datetime) -> tuple[list[datetime], int]:
    """The latest MISSED_RECORDED + 1 occurrences due in (checked_through, now], and how many
    there are in all (within LOOKBACK)."""
    after = max(schedule.checked_through, now - LOOKBACK)
    if schedule.run_at is not None:
        zone(schedule.timezone)
        due = [schedule.run_at] if after < schedule.run_at <= now else []
        return due, len(due)
    kept: deque[datetime] = deque(maxlen=MISSED_RECORDED + 1)
    count = 0
    for instant in occurrences(
        schedule.rrule,
        zone(schedule.timezone),
        schedule.start,
        after=after,
        missing_dst=schedule.missing_dst,
    ):
        if instant > now:
            break
        kept.append(instant)
        count += 1
    return list(kept), count


def _utc(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M:%S} UTC"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _audit(schedule: Schedule, occurrence: Occurrence, event: str, **details) -> None:
    audit_record(
        event=event,
        actor=schedule.owner,
        job_id=occurrence.job_id,
        details={
            "schedule": schedule.pk,
            "name": schedule.saved_set_action.name,
            "occurs_at": occurrence.occurs_at.isoformat(),
            "state": occurrence.state,
            "reason": occurrence.reason,
            **details,
        },
    )


def _insert(schedule: Schedule, occurs_at: datetime, now: datetime, state: str, reason: str):
    """The occurrence's row, or None when another process recorded it first."""
    try:
        with transaction.atomic():
            return Occurrence.objects.create(
                schedule=schedule, occurs_at=occurs_at, state=state, reason=reason, recorded_at=now
            )
    except IntegrityError:
        return None


def _record(
    schedule: Schedule,
    occurs_at: datetime,
    now: datetime,
    state: str,
    reason: str,
    report: SchedulerReport,
    *,
    summary: dict | None = None,
) -> None:
    """Record an occurrence that does not fire (skipped or failed), audited, once."""
    with transaction.atomic():
        occurrence = _insert(schedule, occurs_at, now, state, reason)
        if occurrence is None:
            return
        _audit(schedule, occurrence, _EVENTS[state], **({"missed": summary} if summary else {}))
        if state == State.FAILED:
            occurrence_failed.send(sender=Occurrence, occurrence=occurrence, at=now)
    report.count(state)


_EVENTS = {
    State.FIRED: Event.SCHEDULE_FIRED,
    State.SKIPPED: Event.SCHEDULE_SKIPPED,
    State.FAILED: Event.SCHEDULE_FAILED,
    State.QUEUED: Event.SCHEDULE_QUEUED,
}


def _broken(schedule: Schedule, now: datetime, message: str, report: SchedulerReport) -> None:
    """Pause a schedule whose rule or zone no longer parses, with a FAILED occurrence saying
    why: once, whichever process sees it first, and not again at every pass."""
    with transaction.atomic():
        if not Schedule.objects.filter(pk=schedule.pk, paused=False).update(
            paused=True, updated_at=now
        ):
            return
        reason = (
            f"The schedule's rule or time zone no longer parses ({message}); the schedule was "
            "paused."
        )
        occurrence = _insert(schedule, now, now, State.FAILED, reason)
        if occurrence is not None:
            _audit(schedule, occurrence, Event.SCHEDULE_FAILED)
            occurrence_failed.send(sender=Occurrence, occurrence=occurrence, at=now)
        audit_record(
            event=Event.SCHEDULE_PAUSED,
            actor=None,
            actor_username="scheduler",
            details={"schedule": schedule.pk, "reason": reason},
        )
    report.failed += 1


def _unfinished_run(schedule: Schedule) -> Job | None:
    """The oldest job a run of the schedule made that is still queued, running or awaiting
    approval."""
    fired = Occurrence.objects.filter(schedule=schedule, state=State.FIRED)
    return (
        Job.objects.filter(
            Q(pk__in=fired.filter(job__isnull=False).values("job_id"))
            | Q(batch_id__in=fired.filter(batch_id__isnull=False).values("batch_id")),
            status__in=UNFINISHED,
        )
        .order_by("created_at")
        .only("pk", "status")
        .first()
    )


def _fire_new(
    schedule: Schedule,
    occurs_at: datetime,
    now: datetime,
    report: SchedulerReport,
    summary: dict | None,
) -> None:
    with transaction.atomic():
        # The row first: whoever inserts it decides this occurrence, and only they.
        occurrence = _insert(schedule, occurs_at, now, State.FIRED, "")
        if occurrence is None:
            return
        if summary:
            audit_record(
                event=Event.SCHEDULE_SKIPPED,
                actor=schedule.owner,
                details={**summary, "name": schedule.saved_set_action.name},
            )
        if previous := _unfinished_run(schedule):
            queued = Occurrence.objects.filter(schedule=schedule, state=State.QUEUED).exists()
            ahead = (
                f"the previous run (job {previous.pk}) is {previous.get_status_display().lower()}"
            )
            if schedule.overlap == Schedule.Overlap.QUEUE and not queued:
                occurrence.state, occurrence.reason = State.QUEUED, f"queued: {ahead}"
            else:
                occurrence.state = State.SKIPPED
                occurrence.reason = f"overlap: {ahead}" + (
                    ", and another occurrence is already queued behind it" if queued else ""
                )
            occurrence.save(update_fields=["state", "reason"])
            _audit(schedule, occurrence, _EVENTS[occurrence.state], job=str(previous.pk))
            report.count(occurrence.state)
            return
        _submit(schedule, occurrence, now, report)


def _fire_queued(schedule: Schedule, now: datetime, report: SchedulerReport) -> None:
    """Fire the occurrence queued behind the schedule's previous run, once that run ended."""
    queued = (
        Occurrence.objects.filter(schedule=schedule, state=State.QUEUED)
        .order_by("occurs_at")
        .first()
    )
    if queued is None or _unfinished_run(schedule) is not None:
        return
    with transaction.atomic():
        # Compare-and-set: the one process whose update takes the row fires it.
        if not Occurrence.objects.filter(pk=queued.pk, state=State.QUEUED).update(
            state=State.FIRED
        ):
            return
        queued.state = State.FIRED
        _submit(schedule, queued, now, report)


def _refusal(schedule: Schedule, saved: SavedSetAction) -> str | None:
    """Why the run cannot even be asked for, in words better than a submit's refusal."""
    if saved.cluster is None:
        return "The saved Set Action's cluster was deleted."
    if not saved.cluster.is_active:
        return f"Cluster {saved.cluster.name} is inactive."
    if not schedule.owner.is_active:
        return f"The schedule's owner {schedule.owner.get_username()} is no longer active."
    return None


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(message for messages in exc.message_dict.values() for message in messages)
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Refused."


def _submit(schedule: Schedule, occurrence: Occurrence, now: datetime, report: SchedulerReport):
    """Submit the occurrence's run (inside the caller's transaction, which holds its row) and
    record what came of it."""
    saved = SavedSetAction.objects.select_related("cluster").get(pk=schedule.saved_set_action_id)
    occurrence.version = saved.version
    reason = _refusal(schedule, saved)
    preapproval = None
    if reason is None:
        approval = schedule_approval_state(schedule, saved)
        if approval.waits:
            reason = approval.waiting_reason
        else:
            preapproval = approval.preapproval(schedule)
    jobs = None
    frozen = False
    if reason is None:
        try:
            # A savepoint: a refused submit leaves the occurrence's row to record why.
            with transaction.atomic():
                jobs = job_submit(
                    user=schedule.owner,
                    action=saved.action,
                    cluster=saved.cluster,
                    cids=saved.cid_list,
                    stored_credential=True,
                    unattended=True,
                    preapproval=preapproval,
                    idempotency_key=(
                        f"schedule:{schedule.pk}:{occurrence.occurs_at:%Y-%m-%dT%H:%M:%SZ}"
                    ),
                )
        except Frozen as exc:
            # Not a failure: a freeze is the team saying nothing goes out now.
            frozen, reason = True, _message(exc)
        except (ValidationError, PermissionDenied) as exc:
            reason = _message(exc)
    if frozen:
        occurrence.state, occurrence.reason = State.SKIPPED, reason
    elif jobs is None:
        occurrence.state, occurrence.reason = State.FAILED, reason
    else:
        occurrence.state, occurrence.reason = State.FIRED, ""
        occurrence.fired_at = now
        occurrence.job = jobs[0]
        occurrence.batch_id = jobs[0].batch_id
    occurrence.save(update_fields=["state", "reason", "version", "fired_at", "job", "batch_id"])
    if frozen:
        _audit(schedule, occurrence, Event.SCHEDULE_SKIPPED, version=saved.version)
    elif jobs is None:
        _audit(schedule, occurrence, Event.SCHEDULE_FAILED, version=saved.version)
        occurrence_failed.send(sender=Occurrence, occurrence=occurrence, at=now)
    else:
        _audit(
            schedule,
            occurrence,
            Event.SCHEDULE_FIRED,
            version=saved.version,
            jobs=[str(job.pk) for job in jobs],
            batch_id=str(jobs[0].batch_id) if jobs[0].batch_id else None,
            **({"preapproved": preapproval.details()} if preapproval else {}),
        )
    report.count(occurrence.state)
