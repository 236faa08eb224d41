"""Change freezes and maintenance windows: what they mean at an instant, refusing a submit
during a freeze (or recording an admin's override), the hold a worker's claim applies, and
creating and removing them, audited.

A maintenance window's openings are computed by lib.recurrence alone, never by hand: its
RRULE, in its time zone, from its DTSTART.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ChangeFreeze, Cluster, Job, MaintenanceWindow
from lib.recurrence import RecurrenceError, occurrences

logger = logging.getLogger(__name__)

Event = AuditEntry.Event
WaitingFor = Job.WaitingFor

# How many back-to-back or overlapping openings of one window are joined into one stretch.
MAX_JOINED_OPENINGS = 50


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


class Frozen(ValidationError):
    """A change freeze covers the cluster now: the Set Action is refused, nothing written."""

    def __init__(self, freeze: ChangeFreeze, cluster: Cluster) -> None:
        super().__init__(
            f"Cluster {cluster.name} is in a change freeze until {_utc(freeze.ends_at)}: "
            f"{freeze.reason}. Nothing is sent to it until then; submit again after the freeze."
        )
        self.freeze = freeze


@dataclass(frozen=True)
class FreezeOverride:
    """An admin's override of a freeze for one Set Action: each of its jobs records it."""

    freeze: ChangeFreeze
    reason: str
    user: object


def freeze_active(cluster_id: int, at: datetime) -> ChangeFreeze | None:
    """The freeze covering the cluster at `at` (one of its own or one of all clusters), the
    one ending last when several do; None when none does. A freeze covers [starts_at,
    ends_at)."""
    return (
        ChangeFreeze.objects.filter(Q(cluster_id=cluster_id) | Q(cluster__isnull=True))
        .filter(starts_at__lte=at, ends_at__gt=at)
        .select_related("cluster")
        .order_by("-ends_at", "-pk")
        .first()
    )


def freeze_check(
    *, user, cluster: Cluster, override_reason: str, at: datetime
) -> FreezeOverride | None:
    """Whether a Set Action to `cluster` may be recorded at `at`: None when no freeze covers
    it; the override when one does and an admin (jobs.override_freeze) gave a reason; else
    Frozen. A reason from anyone else is refused (PermissionDenied: the API's 403), freeze or
    not."""
    reason = override_reason.strip()
    if reason and not user.has_perm("jobs.override_freeze"):
        raise PermissionDenied("Only an administrator may override a change freeze.")
    freeze = freeze_active(cluster.pk, at)
    if freeze is None:
        return None
    if not reason:
        raise Frozen(freeze, cluster)
    return FreezeOverride(freeze=freeze, reason=reason, user=user)


def freeze_override_record(
    override: FreezeOverride, jobs: list[Job], ip_address: str | None
) -> None:
    """Audit an override, once per job it lets through; inside the submit's transaction."""
    for job in jobs:
        audit_record(
            event=Event.FREEZE_OVERRIDDEN,
            actor=override.user,
            job_id=job.pk,
            ip_address=ip_address,
            details={**_freeze_details(override.freeze), "override_reason": override.reason},
        )


@dataclass(frozen=True)
class WindowState:
    """A cluster's maintenance windows at an instant: open (until `until`), or closed until
    `opens_at` (None: no window of it opens again)."""

    open: bool
    until: datetime | None = None
    opens_at: datetime | None = None


def _window_state(window: MaintenanceWindow, at: datetime) -> WindowState:
    """One window at `at`: the first opening that has not closed by then is open at `at`
    when it has begun. Openings that overlap or touch are one stretch."""
    duration = window.duration
    upcoming = occurrences(window.rrule, window.timezone, window.starts_at, after=at - duration)
    opening = next(upcoming, None)
    if opening is None:
        return WindowState(open=False)
    if opening > at:
        return WindowState(open=False, opens_at=opening)
    until = opening + duration
    for _ in range(MAX_JOINED_OPENINGS):
        following = next(upcoming, None)
        if following is None or following > until:
            break
        until = max(until, following + duration)
    return WindowState(open=True, until=until)


def window_state(cluster_id: int, at: datetime) -> WindowState | None:
    """The cluster's maintenance windows at `at`: None when it has none (always open); open
    when one of them is, until the latest of their ends; else closed until the soonest
    opening. A window whose rule no longer parses is left out, logged."""
    states = []
    for window in MaintenanceWindow.objects.filter(cluster_id=cluster_id):
        try:
            states.append(_window_state(window, at))
        except RecurrenceError:
            logger.exception("maintenance window %s cannot be computed; ignored", window.pk)
    if not states:
        return None
    opened = [state.until for state in states if state.open]
    if opened:
        return WindowState(open=True, until=max(opened))
    openings = [state.opens_at for state in states if state.opens_at]
    return WindowState(open=False, opens_at=min(openings, default=None))


def hold_annotations(at: datetime) -> dict:
    """What `job_hold` reads of a job's freezes and windows, as annotations of the claim's
    one read of the job: the end of the freeze covering its cluster at `at` that ends last
    (`freeze_until`, None when none does), and whether its cluster has maintenance windows."""
    covering = ChangeFreeze.objects.filter(
        Q(cluster_id=OuterRef("cluster_id")) | Q(cluster__isnull=True),
        starts_at__lte=at,
        ends_at__gt=at,
    ).order_by("-ends_at")
    return {
        "freeze_until": Subquery(covering.values("ends_at")[:1]),
        "has_windows": Exists(MaintenanceWindow.objects.filter(cluster_id=OuterRef("cluster_id"))),
    }


def job_hold(job: Job, at: datetime) -> tuple[str, datetime | None] | None:
    """Why a worker claiming `job` (read with `hold_annotations(at)`) at `at` must not send
    it, and until when: a freeze covering its cluster (unless an admin overrode it for this
    job), until the freeze's end; or its cluster's maintenance windows all closed, until the
    next opens (None: none is due to). None when it may be sent."""
    if job.freeze_until and not job.freeze_override_reason:
        return WaitingFor.FREEZE, job.freeze_until
    state = window_state(job.cluster_id, at) if job.has_windows else None
    if state is not None and not state.open:
        return WaitingFor.WINDOW, state.opens_at
    return None


def _freeze_details(freeze: ChangeFreeze) -> dict:
    return {
        "freeze_id": freeze.pk,
        "cluster": freeze.cluster.name if freeze.cluster_id else None,
        "starts_at": freeze.starts_at.isoformat(),
        "ends_at": freeze.ends_at.isoformat(),
        "reason": freeze.reason,
    }


def freeze_create(
    *, freeze: ChangeFreeze, actor=None, ip_address: str | None = None
) -> ChangeFreeze:
    """Check and save a new freeze with its audit entry; ValidationError by field, nothing
    written, for a missing reason or an end not after its start. Jobs already queued for its
    clusters are held when it starts, by their claims."""
    if actor is not None and freeze.created_by_id is None:
        freeze.created_by = actor
    freeze.full_clean()
    with transaction.atomic():
        freeze.save()
        audit_record(
            event=Event.FREEZE_CREATED,
            actor=actor,
            ip_address=ip_address,
            details=_freeze_details(freeze),
        )
    return freeze


def freeze_delete(*, freeze: ChangeFreeze, actor=None, ip_address: str | None = None) -> bool:
    """Remove a freeze with its audit entry: the jobs it held are sent when their claims next
    look (within a minute, jobs.services.running.HOLD_RECHECK). False, and nothing written,
    when it was removed already."""
    details = _freeze_details(freeze)
    with transaction.atomic():
        deleted, _ = ChangeFreeze.objects.filter(pk=freeze.pk).delete()
        if not deleted:
            return False
        audit_record(
            event=Event.FREEZE_DELETED, actor=actor, ip_address=ip_address, details=details
        )
    return True


def _window_details(window: MaintenanceWindow) -> dict:
    return {
        "window_id": window.pk,
        "cluster": window.cluster.name,
        "rrule": window.rrule,
        "timezone": window.timezone,
        "starts_at": window.starts_at.isoformat(),
        "duration_seconds": window.duration_seconds,
    }


def window_create(
    *, window: MaintenanceWindow, actor=None, ip_address: str | None = None
) -> MaintenanceWindow:
    """Check and save a new maintenance window with its audit entry; ValidationError by field,
    nothing written, for a rule or a time zone lib.recurrence refuses or a duration out of
    range. From then on the cluster's jobs are sent only while one of its windows is open."""
    if actor is not None and window.created_by_id is None:
        window.created_by = actor
    window.full_clean()
    with transaction.atomic():
        window.save()
        audit_record(
            event=Event.WINDOW_CREATED,
            actor=actor,
            ip_address=ip_address,
            details=_window_details(window),
        )
    return window


def window_delete(*, window: MaintenanceWindow, actor=None, ip_address: str | None = None) -> bool:
    """Remove a maintenance window with its audit entry; False, and nothing written, when it
    was removed already. A cluster left without windows is always open."""
    details = _window_details(window)
    with transaction.atomic():
        deleted, _ = MaintenanceWindow.objects.filter(pk=window.pk).delete()
        if not deleted:
            return False
        audit_record(
            event=Event.WINDOW_DELETED, actor=actor, ip_address=ip_address, details=details
        )
    return True
