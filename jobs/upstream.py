"""The one seam to a cluster's Set Action API.

`call_set_action` makes one POST and turns every answer or failure (HTTP errors, timeouts,
refused connections, TLS errors, odd bodies) into an `UpstreamResult`; it never raises for
anything the cluster or the network does. Only this module and the webhook sender
(notifications.webhooks) import `requests`, both through lib.guarded_http.

The cluster's timeout bounds the whole call. Connecting may take at most
CONNECT_TIMEOUT_SECONDS of it; from the moment the connection is made a guard shuts it down at
the deadline, so neither a status line, headers nor a body that trickle in can stretch the call.

Where the call goes is checked at call time as when the cluster was saved (jobs.validators:
the endpoint stays on the base URL's allowed host), and the address the connection actually
reached, after name resolution, must not be link-local or a cloud metadata address: nothing
is sent to one.

The operator's token goes into the Authorization header and nowhere else: it is never logged,
and any text that came from the cluster is redacted before it reaches a result, since a
cluster may echo the token back in an error message, changed in case, percent-encoded or
base64-encoded.

This module makes the call; what an answer means is read in jobs.upstream_answers, and text
from the cluster is made safe in jobs.upstream_redaction.
"""

from __future__ import annotations

import http
import http.client
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
from django.core.exceptions import ValidationError
from urllib3.util import Timeout

from jobs.upstream_answers import (
    MAX_ANSWER_BYTES,
    MAX_ERROR_CHARS,
    ClusterAnswer,
    CustomerResult,
    UpstreamResult,
    _error_text,
    _failed,
    _interpret,
    _json_object,
    _plain_text,
    _timed_out,
)
from jobs.upstream_redaction import _body_keeper, _cleaner
from jobs.validators import address_refused, cluster_endpoint, validate_cluster_endpoint
from lib.guarded_http import AddressRefused, CallGuard, guarded_session
from lib.version import USER_AGENT

# What callers use; the result values are read in jobs.upstream_answers.
__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "MAX_ERROR_CHARS",
    "MAX_RESPONSE_BYTES",
    "ClusterAnswer",
    "CustomerResult",
    "UpstreamResult",
    "call_set_action",
]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 1024 * 1024

_READ_CHUNK_BYTES = 64 * 1024
# Visible ASCII only: anything else in a header value is refused by requests with an error
# that quotes the value, which would put the token into an exception.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")


def call_set_action(
    *,
    base_url: str,
    action_path: str,
    job_id: str,
    action: int,
    action_name: str,
    cids: list[str],
    token: str,
    timeout_seconds: float,
    verify_tls: bool,
) -> UpstreamResult:
    """POST one Set Action to the cluster's endpoint (base URL + action path) and describe
    what came of it.

    `timeout_seconds` bounds the whole call: connecting (at most CONNECT_TIMEOUT_SECONDS of
    it), waiting for the answer, and reading a body however slowly it arrives. Redirects are
    never followed, and at most MAX_RESPONSE_BYTES of the body are read.
    """
    started = time.monotonic()
    clean = _cleaner(token)
    keep = _body_keeper(token)
    if not _HEADER_VALUE.fullmatch(token):
        result = _failed(None, "The token is empty or has characters not allowed in a header")
    elif refusal := _endpoint_refusal(base_url, action_path):
        result = _failed(None, f"Not called: {refusal}")
    else:
        result = _post(
            url=cluster_endpoint(base_url, action_path),
            payload={"job_id": job_id, "action": action, "action_name": action_name, "cids": cids},
            job_id=job_id,
            token=token,
            timeout_seconds=timeout_seconds,
            verify_tls=verify_tls,
            cids=cids,
            clean=clean,
            keep=keep,
        )
    result = replace(result, duration_ms=int((time.monotonic() - started) * 1000))
    logger.info(
        "Set Action call for job %s: %s, HTTP %s, %d ms",
        job_id,
        "success" if result.success else "failed",
        result.http_status if result.http_status is not None else "none",
        result.duration_ms,
    )
    return result


def _endpoint_refusal(base_url: str, action_path: str) -> str:
    """Why the dashboard will not call this endpoint now, or ""."""
    try:
        validate_cluster_endpoint(base_url, action_path)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return ""


class _BearerAuth(requests.auth.AuthBase):
    """Sends the token as a bearer token.

    Given as `auth`, it also stops requests from replacing the header with credentials it
    finds in a ~/.netrc, which it does when no auth is given.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class _DeadlinePassed(Exception):
    pass


class _BodyTooLarge(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__()
        self.head = head  # what was read of the body before it passed the cap


def _post(
    *,
    url: str,
    payload: dict[str, Any],
    job_id: str,
    token: str,
    timeout_seconds: float,
    verify_tls: bool,
    cids: list[str],
    clean: Callable[[str, int], str],
    keep: Callable[[bytes, int], tuple[str, bool]],
) -> UpstreamResult:
    deadline = time.monotonic() + timeout_seconds
    connect_timeout = min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)
    headers = {
        "Idempotency-Key": job_id,
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    with CallGuard(deadline, refuse=address_refused) as guard:
        try:
            with guarded_session(guard) as session:
                response = session.post(
                    url,
                    json=payload,
                    headers=headers,
                    auth=_BearerAuth(token),
                    timeout=Timeout(connect=connect_timeout, total=timeout_seconds),
                    allow_redirects=False,
                    stream=True,
                    verify=verify_tls,
                )
                with response:
                    return _answer(
                        response,
                        guard=guard,
                        deadline=deadline,
                        timeout_seconds=timeout_seconds,
                        cids=cids,
                        clean=clean,
                        keep=keep,
                    )
        except AddressRefused as exc:
            return _failed(
                None,
                f"Not called: the cluster's host resolved to {exc.address}, a link-local or "
                "cloud metadata address (TMS_ALLOW_LINK_LOCAL_CLUSTERS is off)",
            )
        except requests.ConnectTimeout:
            if connect_timeout < timeout_seconds:
                return _failed(
                    None, f"Connection failed: no connection within {connect_timeout:g}s"
                )
            return _timed_out(timeout_seconds)
        except requests.Timeout:
            return _timed_out(timeout_seconds)
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ):
            return _failed(None, "Connection failed: the cluster's URL is not valid")
        except requests.ConnectionError as exc:
            if guard.fired:
                # The guard cut the connection at the deadline, while the status line or the
                # headers were still arriving.
                return _timed_out(timeout_seconds)
            return _failed(None, f"Connection failed: {_short_reason(exc)}")
        except requests.RequestException as exc:
            # Only the class name: the text of some of these quotes the request.
            return _failed(None, f"Request failed: {type(exc).__name__}")


def _answer(
    response: requests.Response,
    *,
    guard: CallGuard,
    deadline: float,
    timeout_seconds: float,
    cids: list[str],
    clean: Callable[[str, int], str],
    keep: Callable[[bytes, int], tuple[str, bool]],
) -> UpstreamResult:
    """What the answer means (jobs.upstream_answers), with the answer as received kept on the
    result whenever its status line and headers came in time: its body too, once read."""
    status = response.status_code
    content_type = clean(
        response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower(), 100
    )
    if time.monotonic() >= deadline:
        # The status line and headers arrived, but only after the deadline.
        return _timed_out(timeout_seconds)

    def received(result: UpstreamResult, body: bytes = b"", cut: bool = False) -> UpstreamResult:
        kept, truncated = keep(body, MAX_ANSWER_BYTES)
        answer = ClusterAnswer(
            status=status,
            content_type=clean(response.headers.get("Content-Type", ""), 200),
            body=kept,
            truncated=truncated or cut,
        )
        return replace(result, answer=answer)

    if not 100 <= status <= 599:
        # A job's http_status must be a real status; keep the odd one in the text only.
        return received(_failed(None, f"Unrecognised HTTP status {status} from cluster"))
    if 300 <= status < 400:
        location = response.headers.get("Location")
        if location:
            return received(_failed(status, f"Unexpected redirect to {clean(location, 500)}"))
        return received(_failed(status, f"Unexpected redirect (HTTP {status}) without a Location"))

    try:
        body = _read_body(response, guard)
    except _DeadlinePassed:
        return _timed_out(timeout_seconds)
    except _BodyTooLarge as exc:
        if 200 <= status < 300:
            message = f"Response from cluster is larger than 1 MiB (HTTP {status})"
        else:
            message = f"API returned status {status}: {_reason(response, clean)}"
        return received(_failed(status, message), exc.head, cut=True)
    except (urllib3.exceptions.HTTPError, OSError):
        return _failed(
            None,
            f"Connection failed: the connection broke while reading the answer (HTTP {status})",
        )

    if not 200 <= status < 300:
        message = _error_text(_json_object(body, content_type), clean) or _plain_text(
            body, content_type, clean
        )
        return received(
            _failed(status, f"API returned status {status}: {message or _reason(response, clean)}"),
            body,
        )
    return received(_interpret(status, content_type or "no content type", body, cids, clean), body)


def _read_body(response: requests.Response, guard: CallGuard) -> bytes:
    """The body, read in chunks until the guard cuts it; raises past the deadline or the cap."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _BodyTooLarge(b"")
    body = bytearray()
    try:
        for chunk in response.raw.stream(_READ_CHUNK_BYTES, decode_content=True):
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise _BodyTooLarge(bytes(body))
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # The socket's own timeout can end a read a moment before the guard fires.
        if guard.fired or isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise _DeadlinePassed from None
        raise
    # A body delimited by the connection's end looks complete when the guard cut it.
    if guard.fired:
        raise _DeadlinePassed
    return bytes(body)


def _reason(response: requests.Response, clean: Callable[[str, int], str]) -> str:
    reason = clean(response.reason or "", 200)
    if reason:
        return reason
    try:
        return http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return "no reason given"


def _short_reason(exc: BaseException) -> str:
    """A few words for an operator about why no connection was made; never the request."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, urllib3.exceptions.NameResolutionError | socket.gaierror):
            return "the cluster's host name could not be resolved"
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error ({cause.reason or type(cause).__name__})"
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        # Before ConnectionResetError, of which it is a subclass.
        if isinstance(cause, http.client.RemoteDisconnected):
            return "the cluster closed the connection without answering"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the cluster"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(causes[-1]).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, outermost first."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if any(current is done for done in seen):
            continue
        seen.append(current)
        yield current
        reason = getattr(current, "reason", None)
        wrapped = [reason, current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in wrapped if isinstance(item, BaseException))
