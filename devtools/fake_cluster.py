"""A fake TMS cluster on loopback, for the demo and the tests.

It speaks the cluster's Set Action API and, on demand, every way a cluster can fail. The
customer IDs of a request choose the answer (the first CID with one of these prefixes decides):

- `E500...`: 500 with a JSON message.
- `REJECT...`: 200 `{"success": false, "message": ...}`.
- `HTML...`: 200 with an HTML page.
- `REDIRECT...`: 302 to another loopback URL (`redirect_to`).
- `HUGE...`: 200 with a JSON body over 1 MiB, delimited by the end of the connection.
- `TRICKLE...`: 200 JSON sent a few bytes at a time, spread over `slow_seconds`.

Independently of these, a CID starting `SLOW` delays the answer by `slow_seconds`, and each
CID starting `PARTIAL` fails in the per-customer results while the others succeed. The token
`bad-token`, or a missing or malformed Authorization header, gets 401. Otherwise every
customer succeeds.

Every answer takes at least `answer_seconds` (default 0), as a real cluster's work does.

It counts the Set Action requests it receives per job id (the Idempotency-Key header, else the
body's `job_id`), before checking anything else, and serves the counts read-only at
`GET /_counts` and `GET /_counts/<job_id>`. It also keeps the most Set Action requests it was
answering at once (`GET /_concurrency`), which a cluster's `max_concurrent_calls` must bound.
It never logs the token; it keeps, per job id, the SHA-256 of the last bearer token it was
sent (`token_digest`), so that tests can tell which token a job's worker sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from jobs.models import JobAction

logger = logging.getLogger(__name__)

SET_ACTION_PATH = "/api/set_action"
COUNTS_PATH = "/_counts"
CONCURRENCY_PATH = "/_concurrency"
BAD_TOKEN = "bad-token"  # noqa: S105 (the fake's one refused token, not a secret)
HUGE_BODY_BYTES = 1024 * 1024 + 1024
MAX_REQUEST_BYTES = 16 * 1024 * 1024
TRICKLE_PIECE_BYTES = 4
# The first CID carrying one of these decides the whole answer.
WHOLE_ANSWER_PREFIXES = ("E500", "REJECT", "HTML", "REDIRECT", "HUGE", "TRICKLE")


def loopback_host(host: str) -> str:
    """`host` if it is a loopback address (or "localhost", taken as 127.0.0.1); else ValueError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{host!r} is not an IP address; the fake cluster listens on loopback only "
            "(127.0.0.1, ::1 or localhost)"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"{host} is not a loopback address; the fake cluster listens on loopback only "
            "(127.0.0.1, ::1 or localhost)"
        )
    return host


class FakeCluster:
    """The fake cluster's server, run in a background thread.

    Use it as a context manager, or call `start()` and `stop()`. Port 0 picks a free port;
    `url` is where it listens once started.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 35.0,
        answer_seconds: float = 0.0,
        redirect_to: str | None = None,
    ) -> None:
        self.host = loopback_host(host)
        self.port = port
        self.slow_seconds = slow_seconds
        self.answer_seconds = answer_seconds
        self.in_flight = 0
        self.max_in_flight = 0
        self._redirect_to = redirect_to
        self._counts: Counter[str] = Counter()
        self._arrivals: dict[str, float] = {}
        self._token_digests: dict[str, str] = {}
        self._lock = threading.Lock()
        # Set by stop(): ends every delay early, so that stopping never waits for them.
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def redirect_to(self) -> str:
        return self._redirect_to or f"{self.url}/moved"

    def start(self) -> FakeCluster:
        """Listen (raises OSError when the address is taken) and serve in a background thread."""
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # A short poll makes stop() quick: shutdown() waits for the loop's next turn.
            kwargs={"poll_interval": 0.02},
            name=f"fake-cluster-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; requests being answered end early."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def count(self, job_id: str) -> int:
        """How many Set Action requests named this job id."""
        with self._lock:
            return self._counts[job_id]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def record(self, job_id: str) -> None:
        with self._lock:
            self._counts[job_id] += 1
            self._arrivals.setdefault(job_id, time.monotonic())

    def token_digest(self, job_id: str) -> str | None:
        """SHA-256 (hex) of the bearer token the last request for this job sent, if any."""
        with self._lock:
            return self._token_digests.get(job_id)

    def record_token(self, job_id: str, token: str) -> None:
        with self._lock:
            self._token_digests[job_id] = hashlib.sha256(token.encode()).hexdigest()

    def arrival(self, job_id: str) -> float | None:
        """When (time.monotonic(), in this process) the first request for this job arrived."""
        with self._lock:
            return self._arrivals.get(job_id)

    def concurrency(self) -> dict[str, int]:
        with self._lock:
            return {"in_flight": self.in_flight, "max_in_flight": self.max_in_flight}

    def reset_concurrency(self) -> None:
        with self._lock:
            self.max_in_flight = self.in_flight

    def call_starts(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def call_ends(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeCluster) -> None:
        self.fake = fake
        if ipaddress.ip_address(fake.host).version == 6:
            self.address_family = socket.AF_INET6
        super().__init__((fake.host, fake.port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeTMS/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only: never the headers, which hold the token.
        logger.info("fake cluster: " + format, *args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == COUNTS_PATH:
            self._send_json(200, self.server.fake.counts())
        elif path == CONCURRENCY_PATH:
            self._send_json(200, self.server.fake.concurrency())
        elif path.startswith(COUNTS_PATH + "/"):
            job_id = unquote(path[len(COUNTS_PATH) + 1 :])
            self._send_json(200, {"job_id": job_id, "count": self.server.fake.count(job_id)})
        elif path == SET_ACTION_PATH:
            self._send_json(405, {"success": False, "message": "Use POST"}, {"Allow": "POST"})
        else:
            self._not_found()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == SET_ACTION_PATH:
            fake = self.server.fake
            fake.call_starts()
            try:
                self._set_action()
            except (BrokenPipeError, ConnectionResetError):
                logger.info("fake cluster: the client went away before the whole answer")
            finally:
                fake.call_ends()
        elif path == COUNTS_PATH or path.startswith(COUNTS_PATH + "/"):
            self._send_json(405, {"success": False, "message": "Use GET"}, {"Allow": "GET"})
        else:
            self._not_found()

    def _not_found(self) -> None:
        self._send_json(404, {"success": False, "message": f"No such endpoint: {self.path}"})

    def _set_action(self) -> None:
        fake = self.server.fake
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._send_json(411, {"success": False, "message": "Content-Length required"})
            return
        if int(length) > MAX_REQUEST_BYTES:
            self._send_json(413, {"success": False, "message": "Request body too large"})
            return
        raw = self.rfile.read(int(length))
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        body_job_id = payload.get("job_id") if isinstance(payload, dict) else None
        key = self.headers.get("Idempotency-Key")
        job_id = key or (body_job_id if isinstance(body_job_id, str) else None)
        if job_id:
            fake.record(job_id)

        authorization = self.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if job_id:
            fake.record_token(job_id, token)
        if scheme != "Bearer" or not token.strip():
            self._send_json(
                401, {"success": False, "message": "Missing or malformed Authorization header"}
            )
            return
        if token == BAD_TOKEN:
            self._send_json(401, {"success": False, "message": "Invalid token"})
            return

        problem = _request_problem(self.headers.get("Content-Type", ""), payload, key)
        if problem:
            self._send_json(400, {"success": False, "message": problem})
            return

        cids: list[str] = payload["cids"]
        if fake.stopping.wait(fake.answer_seconds):
            return
        if any(cid.startswith("SLOW") for cid in cids) and fake.stopping.wait(fake.slow_seconds):
            return  # Stopping: drop the request unanswered, as a dying cluster would.
        special = next(
            (p for cid in cids for p in WHOLE_ANSWER_PREFIXES if cid.startswith(p)), None
        )
        name = payload["action_name"]
        if special == "E500":
            self._send_json(
                500, {"success": False, "message": f"Internal error while applying {name}"}
            )
        elif special == "REJECT":
            self._send_json(
                200, {"success": False, "message": f"{name} rejected: a customer is not eligible"}
            )
        elif special == "HTML":
            self._send(200, "text/html; charset=utf-8", b"<html><body>Maintenance</body></html>")
        elif special == "REDIRECT":
            self._send(302, "text/plain", b"", {"Location": fake.redirect_to})
        elif special == "HUGE":
            self._send_huge(name, cids)
        elif special == "TRICKLE":
            self._send_trickle(_success_answer(name, cids))
        else:
            self._send_json(200, _success_answer(name, cids))

    def _send_huge(self, name: str, cids: list[str]) -> None:
        answer = _success_answer(name, cids)
        answer["padding"] = "x" * HUGE_BODY_BYTES
        # No Content-Length: the client has to count the bytes itself to stop at its cap.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(answer).encode())

    def _send_trickle(self, answer: dict[str, Any]) -> None:
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        pieces = math.ceil(len(body) / TRICKLE_PIECE_BYTES)
        pause = self.server.fake.slow_seconds / pieces
        for start in range(0, len(body), TRICKLE_PIECE_BYTES):
            self.wfile.write(body[start : start + TRICKLE_PIECE_BYTES])
            if self.server.fake.stopping.wait(pause):
                return

    def _send_json(
        self, status: int, answer: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, "application/json", json.dumps(answer).encode(), headers)

    def _send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for header, value in (headers or {}).items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(body)


def _request_problem(content_type: str, payload: object, idempotency_key: str | None) -> str:
    """Why a real cluster would refuse this request with 400, or "" when it would not."""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return "Content-Type must be application/json"
    if not isinstance(payload, dict):
        return "The body must be a JSON object"
    job_id = payload.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        return "job_id must be a non-empty string"
    if idempotency_key is not None and idempotency_key != job_id:
        return "The Idempotency-Key header must equal job_id"
    action = payload.get("action")
    if type(action) is not int or action not in JobAction.values:
        return "action must be a whole number from 1 to 5"
    if not isinstance(payload.get("action_name"), str):
        return "action_name must be a string"
    cids = payload.get("cids")
    if not isinstance(cids, list) or not cids:
        return "cids must be a non-empty list"
    if not all(isinstance(cid, str) and cid for cid in cids):
        return "every cid must be a non-empty string"
    return ""


def _success_answer(name: str, cids: list[str]) -> dict[str, Any]:
    failed = {cid for cid in cids if cid.startswith("PARTIAL")}
    applied = len(cids) - len(failed)
    message = f"Applied {name} to {len(cids)} customer(s)"
    if failed:
        message = f"Applied {name} to {applied} of {len(cids)} customer(s)"
    return {
        "success": True,
        "message": message,
        "results": [
            {"cid": cid, "success": False, "message": "customer is locked by another operation"}
            if cid in failed
            else {"cid": cid, "success": True, "message": "ok"}
            for cid in cids
        ],
    }
