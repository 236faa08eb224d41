"""The event in operators' words, shared by the formats read by people (Slack, Teams,
PagerDuty): the e-mail's subject line, a few facts, and the link to open."""

from __future__ import annotations

from notifications.mail import notice_subject
from notifications.models import Notice

# The payload's facts worth a line, in this order, and how they are called.
FACTS = (
    ("cluster", "Cluster"),
    ("action", "Action"),
    ("operator", "Operator"),
    ("customer_count", "Customers"),
    ("status", "Status"),
    ("http_status", "HTTP status"),
    ("error", "Error"),
    ("username", "User"),
    ("ip_address", "From"),
    ("seq", "Chain place"),
    ("problem", "What is wrong"),
)
LINK_TITLES = {
    "job_id": "Open the job",
    "batch_id": "Open the batch",
    "approval_id": "Open the request",
    "schedule_id": "Open the schedule's runs",
}


def headline(payload: dict) -> str:
    """One sentence saying what happened."""
    if payload["event"] == Notice.TEST:
        return f"Test message from tmsdash to the endpoint “{payload['endpoint']}”: it arrived."
    return notice_subject(payload).removeprefix("[tmsdash] ")


def facts(payload: dict) -> list[tuple[str, str]]:
    """(name, value) of each fact the payload has a value for."""
    return [
        (label, str(payload[key]))
        for key, label in FACTS
        if payload.get(key) not in (None, "", [], {})
    ]


def link(payload: dict) -> tuple[str, str]:
    """(title, URL) of the page to open on TMS_PUBLIC_URL."""
    if payload["event"] == Notice.TEST:
        return "Open the endpoint", payload["url"]
    if payload["event"] in ("signin.break_glass", "audit.chain_broken"):
        return "Open the audit trail", payload["url"]
    # An approval's payload names its job or batch too; its page is the request's.
    for key in ("approval_id", "schedule_id", "batch_id", "job_id"):
        if key in payload:
            return LINK_TITLES[key], payload["url"]
    return "Open tmsdash", payload["url"]
