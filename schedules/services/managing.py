"""Creating, pausing, resuming and deleting schedules, each audited; every input checked
before anything is written, all problems reported together."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.services import set_action_checked
from lib.recurrence import RecurrenceError, check_rule, next_occurrences, zone
from schedules.models import MAX_GRACE_SECONDS, SavedSetAction, Schedule
from schedules.services.access import may_manage

Event = AuditEntry.Event
MAX_RULE_LENGTH = 1000


def _choice(errors: dict, field: str, value, choices) -> str:
    if value not in choices.values:
        errors[field] = [f"Choose one of {', '.join(choices.values)}."]
    return value


def _grace(errors: dict, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRACE_SECONDS:
        errors["grace_seconds"] = [f"A whole number of seconds from 0 to {MAX_GRACE_SECONDS}."]
        return 0
    return value


def _aware(errors: dict, field: str, value) -> datetime | None:
    if not isinstance(value, datetime) or timezone.is_naive(value):
        errors[field] = ["A date and time with its UTC offset (ISO 8601)."]
        return None
    return value


def schedule_details(schedule: Schedule) -> dict:
    details = {
        "schedule": schedule.pk,
        "saved_set_action": schedule.saved_set_action_id,
        "name": schedule.saved_set_action.name,
        "owner": schedule.owner.get_username(),
        "timezone": schedule.timezone,
    }
    if schedule.run_at:
        details["run_at"] = schedule.run_at.isoformat()
    else:
        details |= {
            "rrule": schedule.rrule,
            "start": schedule.start.isoformat(),
            "missing_dst": schedule.missing_dst,
        }
    return details | {
        "missed": schedule.missed,
        "grace_seconds": schedule.grace_seconds,
        "overlap": schedule.overlap,
    }


def schedule_create(
    *,
    user,
    saved_set_action: SavedSetAction,
    run_at: datetime | None = None,
    rrule: str | None = None,
    timezone_name: str = "UTC",
    start: datetime | None = None,
    missing_dst: str = Schedule.MissingDst.RUN,
    missed: str = Schedule.Missed.RUN_LATEST,
    grace_seconds: int = 900,
    overlap: str = Schedule.Overlap.SKIP,
    now: datetime | None = None,
    ip_address: str | None = None,
) -> Schedule:
    """Schedule `saved_set_action` once (`run_at`, in the future) or on a recurrence (`rrule`,
    RFC 5545 without DTSTART, in the IANA zone `timezone_name`, anchored at `start`: by
    default the current minute), audited. Its owner (who every run is made by) must be able to
    run it now; `user` is that owner or an admin. Raises ValidationError by field (nothing
    written) or PermissionDenied. Nothing before its creation fires."""
    if not may_manage(user, saved_set_action.owner_id):
        raise PermissionDenied("Only its owner or an admin may schedule a saved Set Action.")
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    tz = None
    try:
        tz = zone(str(timezone_name or ""))
    except RecurrenceError as exc:
        errors["timezone"] = [str(exc)]
    rule = (rrule or "").strip()
    if (run_at is None) == (not rule):
        errors["run_at"] = ["Give either run_at (once) or rrule (recurring), not both."]
    elif run_at is not None:
        if (run_at := _aware(errors, "run_at", run_at)) is not None and run_at <= now:
            errors["run_at"] = ["run_at is in the past: give a time to come."]
    else:
        if len(rule) > MAX_RULE_LENGTH:
            errors["rrule"] = [f"A rule has at most {MAX_RULE_LENGTH} characters."]
        else:
            try:
                check_rule(rule)
            except RecurrenceError as exc:
                errors["rrule"] = [str(exc)]
        if start is None:
            start = now.replace(second=0, microsecond=0)
        else:
            start = _aware(errors, "start", start)
    missing_dst = _choice(errors, "missing_dst", missing_dst, Schedule.MissingDst)
    missed = _choice(errors, "missed", missed, Schedule.Missed)
    overlap = _choice(errors, "overlap", overlap, Schedule.Overlap)
    grace_seconds = _grace(errors, grace_seconds)
    if rule and not errors:
        try:
            coming = next_occurrences(rule, tz, start, after=now, count=1, missing_dst=missing_dst)
        except RecurrenceError as exc:
            errors["rrule"] = [str(exc)]
        else:
            if not coming:
                errors["rrule"] = ["The rule has no occurrence after now."]
    try:
        saved = saved_set_action
        set_action_checked(
            user=saved.owner,
            action=saved.action,
            cluster=saved.cluster if saved.cluster_id else "",
            cids=saved.cid_list,
        )
    except ValidationError as exc:
        errors.update({f"saved_set_action.{k}": v for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        schedule = Schedule.objects.create(
            saved_set_action=saved_set_action,
            owner=saved_set_action.owner,
            run_at=run_at,
            rrule=rule,
            timezone=str(timezone_name),
            start=start if rule else None,
            missing_dst=missing_dst,
            missed=missed,
            grace_seconds=grace_seconds,
            overlap=overlap,
            checked_through=now,
            created_at=now,
            updated_at=now,
        )
        audit_record(
            event=Event.SCHEDULE_CREATED,
            actor=user,
            ip_address=ip_address,
            details=schedule_details(schedule),
        )
    return schedule


def _set_paused(*, schedule: Schedule, user, paused: bool, ip_address: str | None) -> bool:
    if not may_manage(user, schedule.owner_id):
        raise PermissionDenied("Only its owner or an admin may pause or resume a schedule.")
    with transaction.atomic():
        changed = Schedule.objects.filter(pk=schedule.pk, paused=not paused).update(
            paused=paused, updated_at=timezone.now()
        )
        if changed:
            audit_record(
                event=Event.SCHEDULE_PAUSED if paused else Event.SCHEDULE_RESUMED,
                actor=user,
                ip_address=ip_address,
                details={"schedule": schedule.pk, "name": schedule.saved_set_action.name},
            )
    schedule.refresh_from_db()
    return bool(changed)


def schedule_pause(*, schedule: Schedule, user, ip_address: str | None = None) -> bool:
    """Stop `schedule` firing, audited; False when it was paused already. Its occurrences
    while paused are missed: on resume, the schedule's `missed` rule decides the latest."""
    return _set_paused(schedule=schedule, user=user, paused=True, ip_address=ip_address)


def schedule_resume(*, schedule: Schedule, user, ip_address: str | None = None) -> bool:
    """Let `schedule` fire again, audited; False when it was not paused."""
    return _set_paused(schedule=schedule, user=user, paused=False, ip_address=ip_address)


def schedule_delete(*, schedule: Schedule, user, ip_address: str | None = None) -> None:
    """Delete `schedule` and its occurrences' records, audited; the jobs it made stay."""
    if not may_manage(user, schedule.owner_id):
        raise PermissionDenied("Only its owner or an admin may delete a schedule.")
    with transaction.atomic():
        audit_record(
            event=Event.SCHEDULE_DELETED,
            actor=user,
            ip_address=ip_address,
            details=schedule_details(schedule),
        )
        schedule.delete()
