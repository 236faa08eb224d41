"""Posting a notice to a webhook endpoint, signed with the endpoint's secret.

The body is the notice's JSON payload; the headers carry its event id, the time of sending
(Unix seconds) and `sha256=<hex>`, the HMAC-SHA256 with the secret of `<timestamp>.<body>`.
A 2xx answer within WEBHOOK_TIMEOUT_SECONDS acknowledges it; anything else is a failed attempt.
The URL is checked again when it is called, the address connected to must not be link-local
or cloud metadata, and redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass

import requests
from django.core.exceptions import ValidationError
from urllib3.util import Timeout

from jobs.validators import address_refused
from lib.guarded_http import AddressRefused, CallGuard, guarded_session
from lib.version import USER_AGENT
from notifications.validators import validate_webhook_url

WEBHOOK_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0
# Only this much of an answer's body is read before the answer counts; its beginning is kept
# for the admin's test of an endpoint.
READ_LIMIT_BYTES = 64 * 1024
ANSWER_KEPT_CHARS = 200


@dataclass(frozen=True)
class Outcome:
    """What came of one attempt; `permanent` when trying again cannot help."""

    ok: bool
    http_status: int | None = None
    error: str = ""
    permanent: bool = False
    # The beginning of the answer's body, as text.
    answer: str = ""


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_post(*, url: str, secret: str, event_id: str, payload: dict) -> Outcome:
    """Post one notice; never raises for anything the endpoint or the network does."""
    try:
        validate_webhook_url(url)
    except ValidationError as exc:
        return Outcome(False, error="Not sent: " + " ".join(exc.messages))
    body = webhook_body(payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Tmsdash-Event-Id": event_id,
        "X-Tmsdash-Timestamp": str(timestamp),
        "X-Tmsdash-Signature": webhook_signature(secret, timestamp, body),
    }
    deadline = time.monotonic() + WEBHOOK_TIMEOUT_SECONDS
    with CallGuard(deadline, refuse=address_refused) as guard:
        try:
            with guarded_session(guard) as session:
                # No proxy or ~/.netrc credentials from the environment.
                session.trust_env = False
                response = session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=Timeout(connect=CONNECT_TIMEOUT_SECONDS, total=WEBHOOK_TIMEOUT_SECONDS),
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    status = response.status_code
                    first = next(response.iter_content(READ_LIMIT_BYTES), b"")
        except AddressRefused as exc:
            return Outcome(
                False,
                error=f"Not sent: the host resolved to {exc.address}, a link-local or "
                "cloud metadata address",
            )
        except requests.ConnectTimeout:
            return Outcome(False, error=f"No connection within {CONNECT_TIMEOUT_SECONDS:g}s")
        except requests.Timeout:
            return Outcome(False, error=_late())
        except requests.RequestException as exc:
            if guard.fired:
                return Outcome(False, error=_late())
            return Outcome(False, error=f"Connection failed: {_reason(exc)}")
    answer = first.decode("utf-8", "replace")[:ANSWER_KEPT_CHARS]
    if time.monotonic() >= deadline or guard.fired:
        return Outcome(False, status, _late(), answer=answer)
    if 200 <= status < 300:
        return Outcome(True, status, answer=answer)
    if 300 <= status < 400:
        return Outcome(False, status, f"HTTP {status}: redirects are not followed", answer=answer)
    return Outcome(False, status, f"HTTP {status}", answer=answer)


def _reason(exc: BaseException) -> str:
    """A few words on why no answer came; never the request, which the text of some
    exceptions quotes."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if any(current is done for done in seen):
            continue
        seen.append(current)
        if isinstance(current, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({current.reason or type(current).__name__})"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError | http.client.RemoteDisconnected):
            return "the endpoint closed the connection without answering"
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        pending.extend(item for item in [*nested, *current.args] if isinstance(item, BaseException))
    return type(exc).__name__


def _late() -> str:
    return f"No answer within {WEBHOOK_TIMEOUT_SECONDS:g}s"
