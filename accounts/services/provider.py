"""The one seam to the company's OpenID provider: Authlib's client, configured from settings.

Authlib reads the provider's discovery document and keys, sends the authorization code flow
with PKCE (S256), state and nonce, and checks each ID token: its signature against the
provider's JWKS (fetched again when a token names a key it does not hold, which is how a key
rotation is followed), its issuer, audience, expiry, issue time and nonce. We write no JWT
code; what we add is the configuration, the discovery document's issuer checked against
OIDC_ISSUER, and the signing algorithms narrowed to asymmetric ones, so that neither
`alg: none` nor an HMAC keyed with the provider's public key can pass whatever the provider
advertises.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings
from joserfc.errors import JoseError

__all__ = ["ProviderError", "ProviderUnreachable", "provider_client", "provider_metadata"]

# Signing algorithms an ID token may use: the provider's own keys, never a shared secret.
SIGNING_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
]


class ProviderError(Exception):
    """The provider answered, and what it answered does not sign anyone in: an error it
    returned, or a token that failed a check. The message is plain words, never a token."""

    def __init__(self, reason: str, *, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ProviderUnreachable(Exception):
    """The provider could not be asked: no connection, a timeout, a 5xx."""


_lock = threading.Lock()


@functools.cache
def _client(issuer: str, client_id: str, client_secret: str, scopes: str) -> DjangoOAuth2App:
    registry = OAuth()
    return registry.register(
        name="company",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": scopes,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "default_timeout": settings.OIDC_TIMEOUT,
        },
    )


def provider_client() -> DjangoOAuth2App:
    """The client for the configured provider, its discovery document loaded and checked."""
    client = _client(
        settings.OIDC_ISSUER,
        settings.OIDC_CLIENT_ID,
        settings.OIDC_CLIENT_SECRET,
        " ".join(settings.OIDC_SCOPES),
    )
    provider_metadata(client)
    return client


def provider_metadata(client: DjangoOAuth2App) -> dict[str, Any]:
    """The provider's discovery document, read once per process, checked: its issuer is
    OIDC_ISSUER, and the signing algorithms accepted are the asymmetric ones it offers."""
    with _lock:
        loaded = "_loaded_at" in client.server_metadata
        try:
            metadata = client.load_server_metadata()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnreachable(
                "the provider's discovery document could not be read"
            ) from exc
        if loaded:
            return metadata
        if metadata.get("issuer", "").rstrip("/") != settings.OIDC_ISSUER:
            client.server_metadata.pop("_loaded_at", None)
            raise ProviderError(
                "the provider's discovery document names another issuer than OIDC_ISSUER"
            )
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        metadata["id_token_signing_alg_values_supported"] = [
            alg for alg in offered if alg in SIGNING_ALGORITHMS
        ]
        return metadata


def provider_call(call, *args, **kwargs):
    """Runs one of the client's calls, turning what can go wrong into ProviderError (the
    provider said no, or its token failed a check) or ProviderUnreachable."""
    try:
        return call(*args, **kwargs)
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnreachable(
            f"the provider could not be reached ({type(exc).__name__})"
        ) from exc
    except AuthlibBaseError as exc:
        code = getattr(exc, "error", "") or ""
        raise ProviderError(_words(exc), code=code) from exc
    except JoseError as exc:
        raise ProviderError(f"the identity token failed a check ({exc.error})") from exc


def _words(exc: AuthlibBaseError) -> str:
    """The error in plain words: its code and the provider's description, never a token."""
    error = getattr(exc, "error", "") or type(exc).__name__
    description = getattr(exc, "description", "") or ""
    if error in ("invalid_claim", "missing_claim", "expired_token", "invalid_token"):
        return f"the identity token failed a check ({description or error})"
    return f"the provider answered {error}" + (f": {description}" if description else "")
