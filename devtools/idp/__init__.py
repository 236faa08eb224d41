"""A real OpenID provider on 127.0.0.1 for the tests of company sign-in: panva's certified
`oidc-provider` (npm) run by Node from provider.mjs beside this file.

It has one confidential client (client_secret_basic, authorization code with PKCE S256, refresh
tokens at every code exchange), its own sign-in page ("Test IdP": username, password, "Sign
in"), consent implied, RP-initiated logout, and ID tokens (RS256) carrying sub,
preferred_username, name, email, email_verified and groups, read afresh at every refresh. A
disabled user is unknown to it: prompt=none answers login_required, a refresh invalid_grant.

Users, sessions and tokens live in a temporary folder, so `rotate_keys` can restart Node with a
new signing key and keep the rest. Tests drive it through `/__control__/...` on its own port.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.ports import free_port

START_SECONDS = 30
STOP_SECONDS = 10
LOG_TAIL_LINES = 30
PROVIDER_SCRIPT = Path(__file__).with_name("provider.mjs")


class IdentityProvider:
    """`with IdentityProvider(client_id=..., ...) as idp:` a running provider at `idp.issuer`."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str],
        port: int | None = None,
        log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._config = {
            "port": self.port,
            "clientId": client_id,
            "clientSecret": client_secret,
            "redirectUris": redirect_uris,
            "postLogoutRedirectUris": post_logout_redirect_uris,
            "cookieKeys": [secrets.token_urlsafe(32)],
        }
        self._log = log
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        if self._folder is None:
            raise RuntimeError("the identity provider was never started")
        return self._log or self._folder / "provider.log"

    def start(self) -> None:
        """Starts Node and returns once discovery answers; RuntimeError, with the end of the
        log, if Node stops or discovery does not answer within START_SECONDS."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tmsdash-idp-"))
            (self._folder / "config.json").write_text(json.dumps(self._config))
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("the identity provider needs Node.js (`node` on PATH)")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT), str(self._folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._discovery_answers():
            if self._process.poll() is not None:
                self._fail(f"stopped with exit code {self._process.returncode}")
            if time.monotonic() > deadline:
                self._halt()
                self._fail(f"did not answer discovery within {START_SECONDS} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stops Node and removes the provider's folder (users, sessions, keys) but the log."""
        self._halt()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> IdentityProvider:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_user(
        self,
        sub: str,
        *,
        username: str,
        groups: list[str],
        email: str | None = None,
        password: str = "provider-pass-1",  # noqa: S107 (a test user's, not a secret)
        enabled: bool = True,
    ) -> None:
        """Creates the user `sub`, or replaces it (the username may change; ValueError if
        another user holds it)."""
        self._control(
            "users",
            {
                "sub": sub,
                "username": username,
                "groups": groups,
                "email": email,
                "password": password,
                "enabled": enabled,
            },
        )

    def rotate_keys(self) -> None:
        """Restarts the provider on the same port with a new signing key (a new kid); its JWKS
        then holds only that key. Users, sessions and tokens are kept."""
        if self._folder is None:
            raise RuntimeError("the identity provider is not running")
        self._halt()
        (self._folder / "keys.json").unlink()
        self.start()

    def mutate_next_id_token(self, kind: str) -> None:
        """Spoils the ID token of the next token response that has one, then no more:
        `expired` (exp and iat over an hour ago), `wrong_audience`, `wrong_issuer`,
        `wrong_nonce` (each re-signed with the real key), `alg_none` (unsigned), `tampered`
        (groups gain tms-admins after signing), `hs256_public_key` (HS256 keyed with the
        public key's PEM), `unknown_key` (signed by a key not in the JWKS). ValueError for
        another kind."""
        self._control("mutation", {"kind": kind})

    def _control(self, name: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(  # noqa: S310 (the provider's own http URL)
            f"{self.issuer}/__control__/{name}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (the provider's)
                pass
        except urllib.error.HTTPError as error:
            if error.code == 400:
                raise ValueError(json.loads(error.read())["error"]) from None
            raise

    def _discovery_answers(self) -> bool:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                return response.status == 200
        except OSError:
            return False

    def _halt(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _fail(self, what: str) -> None:
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        tail = "\n".join(lines)
        raise RuntimeError(f"the identity provider at {self.issuer} {what}; its log ends:\n{tail}")
