"""The notices a job's end gives, written in the transaction that ends it.

One event per ended job (`job.failed`, `job.unknown`, `job.expired`, `job.succeeded`), or, for
the parts of a batch, one `batch.ended` once its last part ended. Each event goes to every
recipient that asked for it: active webhook endpoints whose events and clusters match, and, when
e-mail is configured, users whose preferences ask for it and who may see the job. One `Notice`
per event and recipient, each with a task queued to deliver it, all committed with the job's
end or not at all: a process that dies afterwards loses nothing.

A batch part's end queues, in its transaction, a task that looks at the whole batch once that
transaction committed (`notices_record_batch_end`): the task of the last part to end sees every
part ended, whatever order parts ending at once commit in, and no lock is taken where a job
ends. Two such tasks seeing the batch ended write its notices once: the event id is the
batch's, unique per recipient.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django_tasks import task

from jobs.models import Job
from notifications.delivery import deliver_notice
from notifications.models import EventName, Notice, NotificationPreference, WebhookEndpoint

Status = Job.Status
# Event ids are derived from what they are about, so the same event always has the same id.
EVENT_NAMESPACE = uuid.UUID("5d0c1c8e-7a53-4f3e-9b7e-2f0a0b1c6d11")
# The permission to see every operator's jobs: without it, nobody hears of others' jobs.
VIEW_ALL = "view_all_jobs"
JOB_EVENTS = {
    Status.FAILED: EventName.JOB_FAILED,
    Status.UNKNOWN: EventName.JOB_UNKNOWN,
    Status.SUCCESS: EventName.JOB_SUCCEEDED,
}
# Ended with their approval request, never sent: the request's decision is its own news.
NOT_SENT = {Status.DENIED, Status.EXPIRED}


@dataclass(frozen=True)
class Occurrence:
    """An event and what decides who hears of it."""

    event: str
    event_id: uuid.UUID
    failure: bool
    owner_id: int
    cluster_id: int | None
    action: int
    job_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    payload: dict


def event_id_for(event: str, subject: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{event}:{subject}")


def notices_record_job_end(*, job_id: uuid.UUID, status: str, reason: str | None) -> list[Notice]:
    """Write the notices of a job that just ended; call it inside the transaction that ended
    it. A cancelled job gives none (its operator or an admin ended it), nor does a job whose
    approval was denied or expired (its whole batch ends so at once). A batch's part queues
    the look at its batch instead (see the module's docstring)."""
    if status in NOT_SENT:
        return []
    job = _ended_job(Job.objects.filter(pk=job_id))
    if job.batch_id:
        record_batch_end.enqueue(str(job.batch_id))
        return []
    occurrence = _job_ended(job, reason)
    return _write(occurrence) if occurrence else []


def notices_record_batch_end(*, batch_id: uuid.UUID) -> list[Notice]:
    """Write the notices of a batch whose parts have all ended; nothing while one has not,
    and nothing new when they were written already."""
    with transaction.atomic():
        last = _ended_job(
            Job.objects.filter(batch_id=batch_id).order_by(
                F("finished_at").desc(nulls_last=True), "-pk"
            )
        )
        occurrence = _batch_ended(last)
        return _write(occurrence) if occurrence else []


# Declared beside its body, where a batch part's end (notices_record_job_end) queues it.
@task()
def record_batch_end(batch_id: str) -> None:
    """Write a batch's notices if all its parts have ended."""
    notices_record_batch_end(batch_id=uuid.UUID(batch_id))


def _ended_job(jobs) -> Job:
    return (
        jobs.select_related("cluster", "user")
        .only(
            "user__username",
            "cluster__name",
            "batch_id",
            "action",
            "legacy_action_name",
            "status",
            "http_status",
            "error_message",
            "customer_count",
            "finished_at",
        )
        .first()
    )


def _job_ended(job: Job, reason: str | None) -> Occurrence | None:
    if job.status == Status.CANCELLED:
        return None
    event = JOB_EVENTS[job.status]
    if job.status == Status.FAILED and reason == "not_started":
        event = EventName.JOB_EXPIRED
    event_id = event_id_for(event, job.pk)
    return Occurrence(
        event=event,
        event_id=event_id,
        failure=event != EventName.JOB_SUCCEEDED,
        owner_id=job.user_id,
        cluster_id=job.cluster_id,
        action=job.action,
        job_id=job.pk,
        batch_id=None,
        payload={
            "event": event,
            "event_id": str(event_id),
            "job_id": str(job.pk),
            "status": job.status,
            "http_status": job.http_status,
            "error": job.error_message,
            "cluster": job.cluster.name if job.cluster_id else "",
            "action": job.action_label,
            "operator": job.user.username,
            "customer_count": job.customer_count,
            "url": settings.TMS_PUBLIC_URL + reverse("job_detail", args=[job.pk]),
            "occurred_at": job.finished_at.isoformat(),
        },
    )


def _batch_ended(job: Job) -> Occurrence | None:
    """The batch's one event, when every part of `job`'s batch has ended; None before that,
    and when every part was cancelled."""
    parts = Job.objects.filter(batch_id=job.batch_id)
    statuses = Counter(parts.values_list("status", flat=True))
    if statuses[Status.IN_PROGRESS] or statuses[Status.PENDING_APPROVAL]:
        return None
    if set(statuses) == {Status.CANCELLED}:
        return None
    total = sum(statuses.values())
    not_ok = total - statuses[Status.SUCCESS]
    worst = next(
        (s for s in (Status.FAILED, Status.UNKNOWN, Status.CANCELLED) if statuses[s]),
        Status.SUCCESS,
    )
    counts = ", ".join(f"{statuses[s]} {s}" for s in Status.values if statuses[s])
    event_id = event_id_for(EventName.BATCH_ENDED, job.batch_id)
    return Occurrence(
        event=EventName.BATCH_ENDED,
        event_id=event_id,
        failure=bool(not_ok),
        owner_id=job.user_id,
        cluster_id=job.cluster_id,
        action=job.action,
        job_id=None,
        batch_id=job.batch_id,
        payload={
            "event": EventName.BATCH_ENDED,
            "event_id": str(event_id),
            "batch_id": str(job.batch_id),
            "status": worst,
            "http_status": None,
            "error": f"{not_ok} of {total} parts did not succeed ({counts})" if not_ok else "",
            "cluster": job.cluster.name if job.cluster_id else "",
            "action": job.action_label,
            "operator": job.user.username,
            "customer_count": sum(parts.values_list("customer_count", flat=True)),
            "parts": {s: statuses[s] for s in Status.values if statuses[s]},
            "url": settings.TMS_PUBLIC_URL + reverse("batch_detail", args=[job.batch_id]),
            "occurred_at": job.finished_at.isoformat(),
        },
    )


def _wants(events: list[str], occurrence: Occurrence) -> bool:
    """Whether a subscription to `events` covers this occurrence: a batch that ended without
    a failure only for those who also asked for successes."""
    return occurrence.event in events and (occurrence.failure or EventName.JOB_SUCCEEDED in events)


def _endpoints(occurrence: Occurrence) -> list[WebhookEndpoint]:
    return endpoints_subscribed(
        cluster_id=occurrence.cluster_id, wants=lambda events: _wants(events, occurrence)
    )


def endpoints_subscribed(
    *, cluster_id: int | None, wants: Callable[[list[str]], bool]
) -> list[WebhookEndpoint]:
    """The active webhook endpoints whose events `wants`, on `cluster_id` when they are
    narrowed to clusters."""
    endpoints = WebhookEndpoint.objects.filter(is_active=True).prefetch_related("clusters")
    return [
        endpoint
        for endpoint in endpoints
        if wants(endpoint.events)
        and (not (clusters := {c.pk for c in endpoint.clusters.all()}) or cluster_id in clusters)
    ]


def _mail_recipients(occurrence: Occurrence) -> list[int]:
    """The users to e-mail: the job's operator unless they turned it off, and those who asked
    for everyone's jobs and may see them; each active and with an address."""
    preferences = {
        preference.user_id: preference
        for preference in NotificationPreference.objects.filter(
            Q(user_id=occurrence.owner_id) | Q(all_jobs=True)
        ).prefetch_related("clusters")
    }
    own = preferences.get(occurrence.owner_id, NotificationPreference())
    owner = own.own_jobs and (occurrence.failure or own.successes)
    watchers = [
        user_id
        for user_id, preference in preferences.items()
        if user_id != occurrence.owner_id
        and preference.all_jobs
        and (occurrence.failure or preference.successes)
        and _narrowed_to(preference, occurrence)
    ]
    if not owner and not watchers:
        return []
    may_see_all = (
        Q(is_superuser=True)
        | Q(user_permissions__codename=VIEW_ALL, user_permissions__content_type__app_label="jobs")
        | Q(
            groups__permissions__codename=VIEW_ALL,
            groups__permissions__content_type__app_label="jobs",
        )
    )
    wanted = Q(pk__in=watchers) & may_see_all
    if owner:
        wanted |= Q(pk=occurrence.owner_id)
    users = get_user_model().objects.filter(wanted, is_active=True).exclude(email="")
    return sorted(set(users.values_list("pk", flat=True)))


def _narrowed_to(preference: NotificationPreference, occurrence: Occurrence) -> bool:
    """Whether the occurrence is on one of the clusters and for one of the actions the
    preference narrows everyone's jobs to (none: all)."""
    clusters = {cluster.pk for cluster in preference.clusters.all()}
    if clusters and occurrence.cluster_id not in clusters:
        return False
    return not preference.actions or occurrence.action in preference.actions


def _write(occurrence: Occurrence) -> list[Notice]:
    return notices_write(
        event=occurrence.event,
        event_id=occurrence.event_id,
        job_id=occurrence.job_id,
        batch_id=occurrence.batch_id,
        payload=occurrence.payload,
        endpoints=_endpoints(occurrence),
        user_ids=_mail_recipients(occurrence) if settings.TMS_MAIL_ENABLED else [],
    )


def notices_write(
    *,
    event: str,
    event_id: uuid.UUID,
    job_id: uuid.UUID | None,
    batch_id: uuid.UUID | None,
    payload: dict,
    endpoints: list[WebhookEndpoint],
    user_ids: list[int],
) -> list[Notice]:
    """Write one notice of the event per webhook endpoint and per user (by e-mail), each with
    its delivery task queued; in the caller's transaction, so that they commit with what they
    tell. An event already recorded for a recipient is not written twice (a notice is unique
    per event id and recipient), and never fails the caller."""
    common = {
        "event": event,
        "event_id": event_id,
        "job_id": job_id,
        "batch_id": batch_id,
        "payload": payload,
    }
    notices = [
        Notice(channel=Notice.Channel.WEBHOOK, endpoint=endpoint, **common)
        for endpoint in endpoints
    ]
    notices += [
        Notice(channel=Notice.Channel.EMAIL, user_id=user_id, **common) for user_id in user_ids
    ]
    if not notices:
        return []
    Notice.objects.bulk_create(notices, ignore_conflicts=True)
    for notice in notices:
        deliver_notice.enqueue(str(notice.pk))
    return notices
