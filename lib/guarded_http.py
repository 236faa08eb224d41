"""An HTTP call with a hard deadline, to an address checked after it was resolved.

Used by the two places that post to addresses an admin configured: the cluster client
(jobs.upstream) and the webhook sender (notifications.webhooks).
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_ import create_urllib3_context


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


@functools.cache
def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS settings of every https call in this process with this `verify`: False, or the
    CA bundle that certificates are checked against (True: requests' own; a path: one named by
    REQUESTS_CA_BUNDLE, which requests substitutes for True where a session trusts the
    environment).

    Made once per process: left to themselves, requests and urllib3 make a context for each
    connection and load the CA bundle into it, about 25 ms of CPU per call (a bundle changed
    on disk is read at the next start). urllib3 sets a context's verify_mode from the call's
    `verify` each time it uses it, so each context is only ever set to what it already holds.
    """
    if verify is False:
        return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    bundle = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if os.path.isdir(bundle):
        context.load_verify_locations(capath=bundle)
    else:
        context.load_verify_locations(cafile=bundle)
    return context


def _shared(verify: Any) -> bool:
    """Whether a call with this `verify` uses a context of _tls_context (a bundle that is not
    there is left for requests to refuse, as it does)."""
    return isinstance(verify, bool) or (isinstance(verify, str) and os.path.exists(verify))


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' transport, with this process's TLS contexts (_tls_context)."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if _shared(verify):
            pool_kwargs["ssl_context"] = _tls_context(verify)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if verify is not False and _shared(verify):
            # The bundle is in the context already: not loaded again for this connection.
            conn.ca_certs = conn.ca_cert_dir = None


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

    adapter = _Adapter()
    adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
    return adapter


def guarded_session(guard: CallGuard) -> requests.Session:
    """A session whose every new connection, http or https, is handed to `guard`."""
    session = requests.Session()
    adapter = guarded_adapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
