"""What a cluster's answer to a Set Action means: the result value `call_set_action` returns
for every answer or failure, and the reading of a 2xx answer's JSON (a success marker, and
one result per customer sent).

Every text taken from the answer goes through the `clean` function it is given
(jobs.upstream_redaction), so no token echoed by the cluster reaches a result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.upstream_redaction import _shorten
from lib import boundedjson

MAX_ERROR_CHARS = 1000
# How many failed customers the error message names; the rest are counted.
NAMED_FAILED_CUSTOMERS = 5
MAX_CUSTOMER_MESSAGE_CHARS = 500
MAX_REASON_CHARS = 100
# How much of an answer's body is kept on its job, in UTF-8 bytes.
MAX_ANSWER_BYTES = 4096


@dataclass(frozen=True)
class ClusterAnswer:
    """The cluster's answer as received, made safe to store and show: its HTTP status (any,
    even one outside 100-599), its Content-Type header, and the start of its body decoded as
    UTF-8 (invalid bytes replaced), the token redacted (jobs.upstream_redaction)."""

    status: int
    content_type: str  # "" when the cluster sent none
    body: str  # at most MAX_ANSWER_BYTES in UTF-8; "" when the body was not read
    truncated: bool  # the body was longer than what `body` keeps


@dataclass(frozen=True)
class CustomerResult:
    cid: str
    success: bool
    message: str  # "" when the cluster gave none


@dataclass(frozen=True)
class UpstreamResult:
    success: bool
    http_status: int | None  # None when there was no complete HTTP answer
    error_message: str  # "" on success; at most MAX_ERROR_CHARS characters
    summary: str  # the job's response_summary; "" when nothing sensible
    customer_results: tuple[CustomerResult, ...]
    duration_ms: int
    # None when no HTTP answer came (no connection, a timeout, a connection that broke).
    answer: ClusterAnswer | None = None


def _interpret(
    status: int,
    content_type: str,
    body: bytes,
    cids: list[str],
    clean: Callable[[str, int], str],
) -> UpstreamResult:
    """A 2xx answer: success only with a success marker and no failed or unknown customer."""
    unrecognised = f"Unrecognised response from cluster (HTTP {status}, {content_type})"
    if not _is_json(content_type):
        return _failed(status, unrecognised)
    data = _json_object(body, content_type)
    if data is None:
        return _failed(status, f"{unrecognised}: not a JSON object")

    state = data.get("status")
    state = state.strip().lower() if isinstance(state, str) else ""
    reported_failure = data.get("success") is False or state in {"error", "failed"}
    reported_success = data.get("success") is True or state == "success"
    results = _customer_results(data.get("results"), cids, clean)
    customer_results = results.customers if results else ()

    if reported_failure:
        message = _error_text(data, clean) or (
            f"Cluster reported a failure without a message (HTTP {status})"
        )
        problems = [message, *(results.problems(len(cids)) if results else [])]
        return _failed(status, "; ".join(problems), customer_results=customer_results)
    if not reported_success:
        return _failed(status, f"{unrecognised}: no success or status field")

    message = data.get("message")
    message = clean(message, MAX_ERROR_CHARS) if isinstance(message, str) else ""
    if results is None:
        return _failed(status, f"{unrecognised}: malformed results", summary=message)
    problems = results.problems(len(cids))
    if problems:
        return _failed(
            status, "; ".join(problems), summary=message, customer_results=customer_results
        )
    return UpstreamResult(
        success=True,
        http_status=status,
        error_message="",
        summary=message or f"Cluster accepted {len(cids)} customer(s)",
        customer_results=customer_results,
        duration_ms=0,
    )


@dataclass(frozen=True)
class _Results:
    customers: tuple[CustomerResult, ...]
    unknown_cids: tuple[str, ...]

    def problems(self, sent: int) -> list[str]:
        found = []
        failed = [c for c in self.customers if not c.success]
        if failed:
            named = ", ".join(
                f"{c.cid} ({_shorten(c.message, MAX_REASON_CHARS)})" if c.message else c.cid
                for c in failed[:NAMED_FAILED_CUSTOMERS]
            )
            more = len(failed) - NAMED_FAILED_CUSTOMERS
            if more > 0:
                named += f" and {more} more"
            noun = "customer" if sent == 1 else "customers"
            found.append(f"{len(failed)} of {sent} {noun} failed: {named}")
        if self.unknown_cids:
            named = ", ".join(self.unknown_cids[:NAMED_FAILED_CUSTOMERS])
            more = len(self.unknown_cids) - NAMED_FAILED_CUSTOMERS
            if more > 0:
                named += f" and {more} more"
            found.append(f"Cluster reported on customers not in the request: {named}")
        return found


def _customer_results(
    raw: object, cids: list[str], clean: Callable[[str, int], str]
) -> _Results | None:
    """The cluster's per-customer results, one per sent CID; None when they are malformed.

    A CID reported twice keeps its first place, and a failure in either report wins. CIDs that
    were not sent are left out of the results and named separately.
    """
    if raw is None:
        return _Results(customers=(), unknown_cids=())
    if not isinstance(raw, list):
        return None
    sent = set(cids)
    by_cid: dict[str, CustomerResult] = {}
    unknown: dict[str, None] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            return None
        cid, success, message = entry.get("cid"), entry.get("success"), entry.get("message")
        if not isinstance(cid, str) or not isinstance(success, bool):
            return None
        if message is not None and not isinstance(message, str):
            return None
        if cid not in sent:
            unknown[clean(cid, 64)] = None
            continue
        result = CustomerResult(
            cid=cid, success=success, message=clean(message or "", MAX_CUSTOMER_MESSAGE_CHARS)
        )
        earlier = by_cid.get(cid)
        if earlier is None or (earlier.success and not success):
            by_cid[cid] = result
    return _Results(customers=tuple(by_cid.values()), unknown_cids=tuple(unknown))


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _json_object(body: bytes, content_type: str) -> dict[str, Any] | None:
    if not _is_json(content_type):
        return None
    try:
        data = boundedjson.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_text(data: dict[str, Any] | None, clean: Callable[[str, int], str]) -> str:
    """The cluster's explanation: `message`, `error` or `detail`, the first one given."""
    if data is None:
        return ""
    for key in ("message", "error", "detail"):
        value = data.get(key)
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        if isinstance(value, str) and value.strip():
            return clean(value, MAX_ERROR_CHARS)
    return ""


def _plain_text(body: bytes, content_type: str, clean: Callable[[str, int], str]) -> str:
    if content_type != "text/plain":
        return ""
    return clean(body.decode("utf-8", errors="replace"), MAX_ERROR_CHARS)


def _failed(
    http_status: int | None,
    error: str,
    *,
    summary: str = "",
    customer_results: tuple[CustomerResult, ...] = (),
) -> UpstreamResult:
    return UpstreamResult(
        success=False,
        http_status=http_status,
        error_message=_shorten(error, MAX_ERROR_CHARS),
        summary=summary,
        customer_results=customer_results,
        duration_ms=0,
    )


def _timed_out(timeout_seconds: float) -> UpstreamResult:
    return _failed(None, f"Request timeout after {timeout_seconds:g}s")
