"""Small purpose-built HTTP servers on 127.0.0.1, for answers the fake cluster does not give."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Respond = Callable[[BaseHTTPRequestHandler], None]


class LoopbackServer:
    """Answers every request with `respond(handler)` and records what it received."""

    def __init__(self, respond: Respond, *, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(
                    method=self.command,
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=self.rfile.read(length),
                )
                with server._lock:
                    server.received.append(received)
                # The client may stop reading early: some tests are about that.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    respond(self)

            do_GET = do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def count_sent(self, size: int) -> None:
        with self._lock:
            self.bytes_sent += size

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def answer(
    status: int,
    body: bytes | str | dict | list = b"",
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> Respond:
    """A respond function that sends one complete answer."""
    if isinstance(body, dict | list):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status, reason)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    return respond


def held(release: threading.Event, respond: Respond) -> Respond:
    """A respond function that holds each request until `release` is set (10 s at most)."""

    def hold(handler: BaseHTTPRequestHandler) -> None:
        release.wait(10)
        respond(handler)

    return hold


def refused_url() -> tuple[socket.socket, str]:
    """A URL whose port refuses connections: bound, never listening, held by the caller."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def unconnectable_url() -> Iterator[str]:
    """A URL whose connections are never accepted: its one-place accept queue is kept full,
    so the kernel drops further connection attempts and they time out."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
