"""Real receivers of notices on loopback: an SMTP server (aiosmtpd) and a webhook receiver that
checks each request's signature, for the notification tests."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.helpers import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refused:
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on 127.0.0.1 keeping every message it accepts."""

    def __init__(self) -> None:
        self._inbox = _Inbox()
        self.port = free_port()
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._inbox.lock:
            return list(self._inbox.messages)

    def clear(self) -> None:
        with self._inbox.lock:
            self._inbox.messages.clear()
            self._inbox.refused.clear()

    def refuse(self, address: str) -> None:
        """Answer 550 to this recipient from now on."""
        with self._inbox.lock:
            self._inbox.refused.add(address)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    payload: dict
    signature_ok: bool


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that checks each POST's signature with `secret`, keeps it,
    and answers `status` (a 2xx acknowledges). `hold` keeps each request waiting until it is
    set. Deliveries are kept whatever the answer."""

    secret: str
    status: int = 204
    deliveries: list[Delivery] = field(default_factory=list)
    hold: threading.Event | None = None
    started: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.record(dict(self.headers), body)
                receiver.started.set()
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/tmsdash"

    def record(self, headers: dict[str, str], body: bytes) -> None:
        timestamp = headers.get("X-Tmsdash-Timestamp", "")
        expected = hmac.new(
            self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        signature_ok = (
            hmac.compare_digest(headers.get("X-Tmsdash-Signature", ""), f"sha256={expected}")
            and abs(time.time() - int(timestamp or 0)) < 300
        )
        with self._lock:
            self.deliveries.append(Delivery(headers, body, json.loads(body), signature_ok))

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()
