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
"""

from __future__ import annotations

import base64
import http
import http.client
import json
import logging
import re
import socket
import ssl
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, quote_plus

import requests
import requests.adapters
import urllib3
import urllib3.connection
from django.core.exceptions import ValidationError
from urllib3.util import Timeout

import tmsdash
from jobs.validators import address_refused, cluster_endpoint, validate_cluster_endpoint
from lib import boundedjson
from lib.guarded_http import AddressRefused, CallGuard, guarded_session

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 1000
# How many failed customers the error message names; the rest are counted.
NAMED_FAILED_CUSTOMERS = 5
MAX_CUSTOMER_MESSAGE_CHARS = 500
MAX_REASON_CHARS = 100
USER_AGENT = f"tmsdash/{tmsdash.__version__}"

_READ_CHUNK_BYTES = 64 * 1024
# Visible ASCII only: anything else in a header value is refused by requests with an error
# that quotes the value, which would put the token into an exception.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_WHITESPACE = re.compile(r"\s+")
# A base64 part shorter than this is not looked for in the cluster's text (a short token's
# encoded fragments would match ordinary words); the token as sent always is.
_MIN_ENCODED_ECHO = 8


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
    pass


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
) -> UpstreamResult:
    status = response.status_code
    content_type = clean(
        response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower(), 100
    )
    if time.monotonic() >= deadline:
        # The status line and headers arrived, but only after the deadline.
        return _timed_out(timeout_seconds)
    if not 100 <= status <= 599:
        # A job's http_status must be a real status; keep the odd one in the text only.
        return _failed(None, f"Unrecognised HTTP status {status} from cluster")
    if 300 <= status < 400:
        location = response.headers.get("Location")
        if location:
            return _failed(status, f"Unexpected redirect to {clean(location, 500)}")
        return _failed(status, f"Unexpected redirect (HTTP {status}) without a Location")

    try:
        body = _read_body(response, guard)
    except _DeadlinePassed:
        return _timed_out(timeout_seconds)
    except _BodyTooLarge:
        if 200 <= status < 300:
            return _failed(status, f"Response from cluster is larger than 1 MiB (HTTP {status})")
        return _failed(status, f"API returned status {status}: {_reason(response, clean)}")
    except (urllib3.exceptions.HTTPError, OSError):
        return _failed(
            None,
            f"Connection failed: the connection broke while reading the answer (HTTP {status})",
        )

    if not 200 <= status < 300:
        message = _error_text(_json_object(body, content_type), clean) or _plain_text(
            body, content_type, clean
        )
        return _failed(
            status, f"API returned status {status}: {message or _reason(response, clean)}"
        )
    return _interpret(status, content_type or "no content type", body, cids, clean)


def _read_body(response: requests.Response, guard: CallGuard) -> bytes:
    """The body, read in chunks until the guard cuts it; raises past the deadline or the cap."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _BodyTooLarge
    body = bytearray()
    try:
        for chunk in response.raw.stream(_READ_CHUNK_BYTES, decode_content=True):
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise _BodyTooLarge
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # The socket's own timeout can end a read a moment before the guard fires.
        if guard.fired or isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise _DeadlinePassed from None
        raise
    # A body delimited by the connection's end looks complete when the guard cut it.
    if guard.fired:
        raise _DeadlinePassed
    return bytes(body)


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


def _cleaner(token: str) -> Callable[[str, int], str]:
    """`clean(text, limit)`: text from the cluster made safe to store and show. A closure, not
    a partial, whose repr in an error report would show the token."""
    echoed = _echo_pattern(token) if token else None

    def clean(text: str, limit: int) -> str:
        return _clean(text, limit, echoed)

    return clean


def _echo_pattern(token: str) -> re.Pattern[str]:
    """The token as a cluster may echo it: as sent, in another case, percent-encoded, or
    base64-encoded (alone or inside a longer encoded text, at any of the three byte alignments,
    in either alphabet)."""
    forms = {token, quote(token, safe=""), quote_plus(token, safe="")}
    raw = token.encode()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode()
            # Only the characters made of the token's bits alone: each holds 6 of them.
            core = encoded[-(-shift * 8 // 6) : (shift + len(raw)) * 8 // 6]
            if len(core) >= _MIN_ENCODED_ECHO:
                forms.add(core)
    alternatives = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)


def _clean(text: str, limit: int, echoed: re.Pattern[str] | None) -> str:
    """No token, no control characters, whitespace collapsed, at most `limit` characters."""
    # Redact before cutting anything, so that no cut can leave part of the token behind.
    text = echoed.sub("[redacted]", text) if echoed else text
    text = text[: limit * 4]
    text = "".join(" " if unicodedata.category(ch) in _INVISIBLE_CATEGORIES else ch for ch in text)
    return _shorten(_WHITESPACE.sub(" ", text).strip(), limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
