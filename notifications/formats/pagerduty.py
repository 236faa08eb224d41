"""PagerDuty's Events API v2: a failed, unknown or expired job triggers an incident, keyed by
its lineage (the first job of its chain of retries), so that the success of a later job of
the same lineage (its retry) resolves it. A batch is keyed by its id the same way; any other
event triggers an incident of its own."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.conf import settings

from notifications.event_names import EventName
from notifications.formats.text import facts, headline, link

# PagerDuty cuts a summary longer than this.
MAX_SUMMARY = 1024
SEVERITY = {
    EventName.JOB_FAILED: "error",
    EventName.JOB_UNKNOWN: "warning",
    EventName.JOB_EXPIRED: "error",
    EventName.BATCH_ENDED: "error",
    EventName.SCHEDULE_FAILED: "error",
    EventName.SIGNIN_BREAK_GLASS: "warning",
    EventName.AUDIT_CHAIN_BROKEN: "critical",
}


def dedup_key(payload: dict, lineage: uuid.UUID | None) -> str:
    if lineage is not None:
        return f"tmsdash-job-{lineage}"
    if "batch_id" in payload and payload["event"] == EventName.BATCH_ENDED:
        return f"tmsdash-batch-{payload['batch_id']}"
    return f"tmsdash-event-{payload['event_id']}"


def _resolves(payload: dict) -> bool:
    if payload["event"] == EventName.JOB_SUCCEEDED:
        return True
    return payload["event"] == EventName.BATCH_ENDED and payload["status"] == "SUCCESS"


def body(payload: dict, *, routing_key: str, lineage: uuid.UUID | None) -> dict:
    key = dedup_key(payload, lineage)
    if _resolves(payload):
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    title, url = link(payload)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": headline(payload)[:MAX_SUMMARY],
            "severity": SEVERITY.get(payload["event"], "info"),
            "source": payload.get("cluster") or urlsplit(settings.TMS_PUBLIC_URL).hostname,
            "class": payload["event"],
            "custom_details": dict(facts(payload)),
        },
        "links": [{"href": url, "text": title}],
        "client": "tmsdash",
        "client_url": settings.TMS_PUBLIC_URL,
    }
