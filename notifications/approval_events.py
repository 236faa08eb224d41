"""The notices of four-eyes approvals, written in the transaction that changes the request.

- `approval.requested`, when a submission starts to wait: to the members of the request's
  approvers group (never its submitter, whatever their groups);
- `approval.reminder`, once, when it still waits at half its wait (housekeeping): to the same
  approvers, less those who already approved it (the first of two);
- `approval.decided`, when it ends APPROVED, DENIED (with the comment), EXPIRED or WITHDRAWN:
  to its submitter, and to its approvers, for whom it no longer waits; each time except to
  whoever ended it (the decider, or the submitter who withdrew it), who knows.

By e-mail to those of them who are active, have an address and did not turn the kind off
(`approval_requests` for approvers, `approval_decisions` for the submitter); and to each
active webhook endpoint subscribed to the event (on the request's cluster, when narrowed).
The event's id is derived from the request's, so that an event recorded twice still gives
each recipient one notice (unique per event id and recipient).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, Sum
from django.urls import reverse

from jobs.models import ApprovalDecision, ApprovalRequest, Job
from notifications.event_names import EventName
from notifications.events import endpoints_subscribed, event_id_for, notices_write
from notifications.models import Notice

Status = ApprovalRequest.Status


def notices_record_approval(
    *,
    request_id: uuid.UUID,
    event: str,
    at: datetime,
    status: str = Status.PENDING,
    actor_id: int | None = None,
    comment: str = "",
) -> list[Notice]:
    """Write the notices of an approval event (one of EventName's `approval.*`) of a request:
    `status` is the request's after the change, `actor_id` who ended it (None: nobody, as
    for an expiry) and `comment` the decider's. Call it inside the transaction of the
    change."""
    request = ApprovalRequest.objects.select_related("approvers_group", "submitter").get(
        pk=request_id
    )
    jobs = request.jobs.order_by("batch_seq", "pk")
    first = jobs.select_related("cluster").only("cluster__name", "action", "legacy_action_name")[0]
    event_id = event_id_for(event, request.pk)
    payload = {
        "event": event,
        "event_id": str(event_id),
        "approval_id": str(request.pk),
        **_subject(request, first),
        "status": status,
        "cluster": first.cluster.name if first.cluster_id else "",
        "action": first.action_label,
        "operator": request.submitter.username,
        "customer_count": jobs.aggregate(n=Sum("customer_count"))["n"],
        "approvers_group": request.approvers_group.name,
        "approvers_required": request.approvers_required,
        "expires_at": request.expires_at.isoformat(),
        # The request's page: every recipient may open it (approvers without the right to see
        # others' jobs included), and it links the jobs for those who may see them.
        "url": settings.TMS_PUBLIC_URL + reverse("approval_detail", args=[request.pk]),
        "occurred_at": at.isoformat(),
    }
    if event == EventName.APPROVAL_DECIDED:
        actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
        payload["decided_by"] = actor.get_username() if actor else None
        payload["comment"] = comment
    return notices_write(
        event=event,
        event_id=event_id,
        job_id=None if request.batch_id else first.pk,
        batch_id=request.batch_id,
        payload=payload,
        endpoints=endpoints_subscribed(
            cluster_id=first.cluster_id, wants=lambda events: event in events
        ),
        user_ids=_mail_recipients(request, event, actor_id) if settings.TMS_MAIL_ENABLED else [],
    )


def _subject(request: ApprovalRequest, first: Job) -> dict[str, str]:
    """What the request holds, named as the jobs' own notices name it."""
    if request.batch_id:
        return {"batch_id": str(request.batch_id)}
    return {"job_id": str(first.pk)}


def _mail_recipients(request: ApprovalRequest, event: str, actor_id: int | None) -> list[int]:
    """The users to e-mail, each active, with an address and not muting the kind."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    approvers = Q(groups=request.approvers_group_id) & ~Q(pk=request.submitter_id)
    approvers &= ~Q(notification_preference__approval_requests=False)
    if event == EventName.APPROVAL_REMINDER:
        approved = ApprovalDecision.objects.filter(request=request).values("decider_id")
        approvers &= ~Q(pk__in=approved)
    wanted = approvers
    if event == EventName.APPROVAL_DECIDED:
        submitter = Q(pk=request.submitter_id)
        submitter &= ~Q(notification_preference__approval_decisions=False)
        wanted = (approvers | submitter) & ~Q(pk=actor_id)
    return sorted(set(users.filter(wanted).values_list("pk", flat=True)))
