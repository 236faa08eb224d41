"""Turning legacy rows into new jobs (field values and CIDs) and audit entries.

Every value is checked (a row that cannot be imported says why), secrets are stripped
(`legacy.redact`), times are read in the legacy app's formats, and ids are kept or mapped to a
fixed uuid5 so that every run maps a legacy job to the same new one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from audit.models import AuditEntry
from jobs.models import Job
from legacy.redact import redact, redact_text
from lib import boundedjson

# Never change it: a legacy id that is not a UUID becomes uuid5(LEGACY_NAMESPACE, id), and every
# later run must map it to the same job.
LEGACY_NAMESPACE = uuid.UUID("f81223ab-462f-4259-aee3-e593a7ce7fc4")

NO_RESULT = "No result was recorded by the legacy dashboard"

_UNKNOWN_ACTION = 0
# The largest value a PositiveSmallIntegerField holds on every database.
_MAX_ACTION_CODE = 32767


@dataclass
class _Context:
    tz: dt.tzinfo
    dry_run: bool
    clusters: dict[str, int]
    deduplicated: set[uuid.UUID]
    users: dict[str, int | None] = field(default_factory=dict)


def legacy_job_uuid(legacy_id: str) -> uuid.UUID:
    """The id an imported job gets: its legacy id when that is a UUID, else a fixed uuid5."""
    try:
        return uuid.UUID(legacy_id)
    except ValueError:
        return uuid.uuid5(LEGACY_NAMESPACE, legacy_id)


def parse_legacy_time(raw: object, tz: dt.tzinfo) -> dt.datetime | None:
    """An aware UTC datetime for a time the legacy app wrote, or None if it is unreadable.

    `YYYY-MM-DD HH:MM:SS` is SQLite's CURRENT_TIMESTAMP, in UTC. Anything else is Python's
    isoformat(): with an offset it says its zone, without one it is the server's local time `tz`.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is None:
            is_sqlite_text = len(text) == 19 and text[10] == " "
            value = value.replace(tzinfo=dt.UTC if is_sqlite_text else tz)
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def normalise_cluster_url(url: str) -> str:
    return url.strip().rstrip("/")


def _job_values(
    row: tuple, raw_cids: list, job_id: uuid.UUID | None, ctx: _Context
) -> tuple[dict[str, Any], list[str], str]:
    """The new job's field values (`job_id` is its id) and CIDs for a legacy row, or the
    reason it is skipped."""
    (
        raw_id,
        username,
        action_code,
        action_name,
        cluster_url,
        batch_id,
        payload,
        summary,
        status,
        created_raw,
        http_raw,
        error_message,
        updated_raw,
    ) = row
    legacy_id = _text(raw_id)
    username = _text(username)
    action_name = _text(action_name).strip()
    cluster_url = redact_text(_text(cluster_url).strip())
    cids = list(dict.fromkeys(cid for cid in (_text(raw).strip() for raw in raw_cids) if cid))
    created_at = parse_legacy_time(created_raw, ctx.tz)
    reason = _unimportable(legacy_id, username, created_at, action_name, cluster_url, cids)
    if reason:
        return {}, [], reason
    http_status = _int(http_raw)
    if http_status is not None and not 100 <= http_status <= 599:
        http_status = None
    status, note = _status(status, http_status)
    updated_at = parse_legacy_time(updated_raw, ctx.tz) or created_at
    action, action_name = _action(action_code, action_name)
    error_message = redact_text(_text(error_message))
    if note:
        error_message = f"{note}\n{error_message}" if error_message else note
    return (
        {
            "id": job_id,
            "legacy_id": legacy_id,
            "username": username,
            "action": action,
            "legacy_action_name": action_name,
            "cluster_id": ctx.clusters.get(normalise_cluster_url(cluster_url)),
            "cluster_url": cluster_url,
            "batch_id": _batch_uuid(_text(batch_id).strip()),
            "status": status,
            "http_status": http_status,
            "error_message": error_message,
            "response_summary": redact_text(_text(summary)),
            "request_payload": _payload(payload),
            "customer_count": len(cids),
            "created_at": created_at,
            "started_at": created_at,
            # An UNKNOWN job never finished; the others ended when the legacy app last wrote.
            "finished_at": None if status == Job.Status.UNKNOWN else updated_at,
            "updated_at": updated_at,
        },
        cids,
        "",
    )


def _unimportable(
    legacy_id: str,
    username: str,
    created_at: dt.datetime | None,
    action_name: str,
    cluster_url: str,
    cids: list[str],
) -> str:
    """Why a legacy job cannot be imported (a value missing or too long), or ""."""
    if not legacy_id:
        return "no job id"
    if len(legacy_id) > 100:
        return "job id longer than 100 characters"
    if not username:
        return "no operator"
    if len(username) > 150:
        return "operator name longer than 150 characters"
    if created_at is None:
        return "unreadable created_at"
    if len(action_name) > 100:
        return "action name longer than 100 characters"
    if len(cluster_url) > 500:
        return "cluster URL longer than 500 characters"
    if cids and max(map(len, cids)) > 64:
        return "customer ID longer than 64 characters"
    return ""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    # PostgreSQL text cannot hold NUL characters.
    return text.replace("\x00", "") if "\x00" in text else text


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None


def _action(raw_code: object, name: str) -> tuple[int, str]:
    """The action code (by code, else by name in any spelling, else 0) and the name to keep."""
    code = _int(raw_code)
    if code is not None and 0 <= code <= _MAX_ACTION_CODE:
        return code, name
    if code is not None:
        # Not storable, but never dropped: shown by its name, or by the code as written.
        return _UNKNOWN_ACTION, name or str(raw_code)
    action = Job.Action.from_name(name)
    return (_UNKNOWN_ACTION if action is None else int(action)), name


_PLAIN_STATUSES = {"SUCCESS", "FAILED", "IN_PROGRESS", ""}


def _status(raw: object, http_status: int | None) -> tuple[str, str]:
    """The job status for a legacy status, and a note for the error message when needed."""
    text = _text(raw).strip().upper()
    if text not in _PLAIN_STATUSES:
        text = re.sub(r"[\s-]+", "_", text)
    if text == "SUCCESS":
        return Job.Status.SUCCESS, ""
    if text == "FAILED":
        return Job.Status.FAILED, ""
    if not text:
        ok = http_status is not None and 200 <= http_status <= 299
        return (Job.Status.SUCCESS if ok else Job.Status.FAILED), ""
    if text == "IN_PROGRESS":
        # The legacy app never finished such a job: its outcome cannot be known.
        return Job.Status.UNKNOWN, NO_RESULT
    return Job.Status.UNKNOWN, f"The legacy dashboard recorded the unknown status {_text(raw)!r}"


def _batch_uuid(text: str) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        # Keeps the jobs of one legacy batch together under one stable id.
        return uuid.uuid5(LEGACY_NAMESPACE, f"batch:{text}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON that databases store")


def _payload(raw: object) -> Any:
    """The request payload as JSON when it is JSON, else as text; secrets stripped either way."""
    text = _text(raw)
    if not text.strip():
        return {}
    try:
        value = boundedjson.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return redact_text(text)
    return {} if value is None else redact(value)


def _audit_entry(row: tuple, ctx: _Context) -> tuple[AuditEntry | None, str]:
    legacy_id, timestamp, username, action, details, ip_address, status = row
    created_at = parse_legacy_time(timestamp, ctx.tz)
    if created_at is None:
        return None, "unreadable timestamp"
    username = _text(username)[:150]
    action = _text(action).strip() or "UNKNOWN"
    record: dict[str, Any] = {"legacy_id": legacy_id, "legacy_status": _text(status)}
    parsed = _payload(details)
    if parsed != {}:
        record["legacy_details"] = parsed
    # The job an entry is about, when its details name one, under the id it was imported with.
    named_job = parsed.get("job_id") if isinstance(parsed, dict) else None
    job_id = legacy_job_uuid(named_job) if isinstance(named_job, str) and named_job else None
    ip_text = _text(ip_address).strip()
    try:
        ip: str | None = str(ipaddress.ip_address(ip_text))
    except ValueError:
        ip = None
        if ip_text:
            record["legacy_ip_address"] = redact_text(ip_text)
    event = f"legacy.{action}"[: AuditEntry._meta.get_field("event").max_length]
    return (
        AuditEntry(
            created_at=created_at,
            actor_username=username,
            event=event,
            job_id=job_id,
            ip_address=ip,
            details=record,
        ),
        "",
    )
