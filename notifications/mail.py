"""Notices by e-mail, through Django's mail framework (EMAIL_URL): plain text and HTML, the
job's or batch's id in the subject and the event's id in the Message-ID. Approval events,
failed scheduled runs and break-glass sign-ins have a template of their own."""

from __future__ import annotations

import smtplib
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from notifications.event_names import APPROVAL_EVENTS, EventName
from notifications.models import Notice
from notifications.webhooks import Outcome

# What is written after "Job <id>" / "Batch <id>" in a subject.
HEADLINES = {
    "job.failed": "FAILED",
    "job.unknown": "outcome UNKNOWN",
    "job.expired": "expired in the queue",
    "job.succeeded": "succeeded",
    "batch.ended": "ended",
}
# What is written after "Job <id>" / "Batch <id>" when its approval request ended.
DECIDED = {
    "APPROVED": "approved{by}",
    "DENIED": "denied{by}",
    "EXPIRED": "expired without a decision",
    "WITHDRAWN": "withdrawn{by}",
}


def message_id(event_id: str) -> str:
    return f"<{event_id}@{urlsplit(settings.TMS_PUBLIC_URL).hostname or 'tmsdash'}>"


def notice_subject(payload: dict) -> str:
    if payload["event"] in APPROVAL_EVENTS:
        return _approval_subject(payload)
    if payload["event"] == EventName.SCHEDULE_FAILED:
        return (
            f"[tmsdash] Scheduled run of {payload['name']} failed: {payload['action']} on "
            f"{payload['cluster'] or 'no cluster'}"
        )
    if payload["event"] == EventName.SIGNIN_BREAK_GLASS:
        return f"[tmsdash] Break-glass sign-in: {payload['username']} signed in with a password"
    if payload["event"] == EventName.AUDIT_CHAIN_BROKEN:
        return f"[tmsdash] The audit trail's hash chain is broken at seq {payload['seq']}"
    if "batch_id" in payload:
        what = f"Batch {payload['batch_id']}"
        headline = payload["error"] or "every part succeeded"
        return f"[tmsdash] {what} ended: {headline}"
    what = f"Job {payload['job_id']}"
    return (
        f"[tmsdash] {what} {HEADLINES[payload['event']]}: {payload['action']} on "
        f"{payload['cluster'] or 'no cluster'}"
    )


def _approval_subject(payload: dict) -> str:
    what = f"Batch {payload['batch_id']}" if "batch_id" in payload else f"Job {payload['job_id']}"
    on = f"{payload['action']} on {payload['cluster'] or 'no cluster'}"
    if payload["event"] == EventName.APPROVAL_DECIDED:
        by = f" by {payload['decided_by']}" if payload["decided_by"] else ""
        headline = DECIDED[payload["status"]].format(by=by)
        return f"[tmsdash] {what} {headline}: {on}"
    asks = f"{on}, {payload['customer_count']} customer(s), by {payload['operator']}"
    if payload["event"] == EventName.APPROVAL_REMINDER:
        return f"[tmsdash] Reminder: {what} still waits for your approval: {asks}"
    return f"[tmsdash] {what} waits for your approval: {asks}"


def _message(notice: Notice, held: list[Notice]) -> EmailMultiAlternatives:
    if notice.event == Notice.DIGEST:
        notices = [{"subject": notice_subject(n.payload), **n.payload} for n in held]
        subject = f"[tmsdash] {len(held)} notices in one digest"
        context = {"notices": notices, "public_url": settings.TMS_PUBLIC_URL}
        name = "digest"
    else:
        subject = notice_subject(notice.payload)
        context = {"notice": notice.payload, "subject": subject}
        name = "approval" if notice.event in APPROVAL_EVENTS else "notice"
        if notice.event == EventName.SCHEDULE_FAILED:
            name = "schedule"
        if notice.event == EventName.SIGNIN_BREAK_GLASS:
            name = "break_glass"
        if notice.event == EventName.AUDIT_CHAIN_BROKEN:
            name = "audit_chain"
    context["preferences_url"] = settings.TMS_PUBLIC_URL + reverse("notification_preferences")
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"notifications/email/{name}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notice.user.email],
        headers={
            "Message-ID": message_id(str(notice.event_id)),
            "X-Tmsdash-Event-Id": str(notice.event_id),
        },
    )
    message.attach_alternative(
        render_to_string(f"notifications/email/{name}.html", context), "text/html"
    )
    return message


def mail_send(notice: Notice, held: list[Notice]) -> Outcome:
    """Send one notice, or a digest of the `held` ones; never raises for what the mail
    server does. A recipient the server refuses is not tried again."""
    try:
        _message(notice, held).send()
    except smtplib.SMTPRecipientsRefused:
        return Outcome(
            False, error="The mail server refused the recipient's address", permanent=True
        )
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, error=f"The mail server answered {exc.smtp_code}")
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, error=f"Mail not sent: {type(exc).__name__}")
    return Outcome(True)
