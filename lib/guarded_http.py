"""An HTTP call with a hard deadline, to an address checked after it was resolved.

Used by the two places that post to addresses an admin configured: the cluster client
(jobs.upstream) and the webhook sender (notifications.webhooks).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

import requests
import requests.adapters
import urllib3
import urllib3.connection


class AddressRefused(Exception):
    """The host resolved to an address the dashboard never calls."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.address = address


class CallGuard:
    """Watches a call's connection from the moment it is made: refuses it when it reached an
    address `refuse` refuses, and shuts it down when the deadline passes.

    A socket timeout bounds each read, not their sum: a status line, headers or a body sent a
    few bytes at a time never trip it. Shutting the socket down from another thread makes the
    blocked read return at once, whatever is being read, and for TLS too. The guard holds a
    duplicate of the socket's descriptor, so it can never shut down a descriptor number reused
    by another connection after this one closed.
    """

    def __init__(self, deadline: float, *, refuse: Callable[[str], bool]) -> None:
        self._refuse = refuse
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopped = False
        self.fired = False
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> CallGuard:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._stopped = True
            sock, self._sock = self._sock, None
        self._timer.cancel()
        if sock is not None:
            sock.close()

    def connected(self, sock: socket.socket) -> None:
        """Called with each new connection, before anything is sent on it."""
        address = sock.getpeername()[0]
        if self._refuse(address):
            sock.close()
            raise AddressRefused(address)
        with self._lock:
            self._sock = socket.socket(fileno=os.dup(sock.fileno()))
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            # An OSError means the peer is gone already: nothing is left to interrupt.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


def guarded_adapter(guard: CallGuard) -> requests.adapters.HTTPAdapter:
    """A transport whose every new connection is handed to `guard`."""

    class Connection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            guard.connected(sock)
            return sock

    class TLSConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            guard.connected(sock)
            return sock

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    adapter = requests.adapters.HTTPAdapter()
    adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
    return adapter


def guarded_session(guard: CallGuard) -> requests.Session:
    """A session whose every new connection, http or https, is handed to `guard`."""
    session = requests.Session()
    adapter = guarded_adapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
