"""Operators' tokens at rest: encrypted while a job needs them, fingerprinted for the record,
and sealed while a Set Action waits for its operator's confirmation."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

__all__ = [
    "SEAL_TTL_SECONDS",
    "InvalidToken",
    "token_decrypt",
    "token_encrypt",
    "token_fingerprint",
    "token_seal",
    "token_unseal",
]

# How long an operator has between the review of a Set Action and its confirmation.
SEAL_TTL_SECONDS = 15 * 60


def token_encrypt(token: str) -> str:
    return Fernet(settings.TMS_TOKEN_KEY).encrypt(token.encode()).decode()


def token_decrypt(ciphertext: str) -> str:
    """The token; raises InvalidToken when the key changed since it was encrypted."""
    return Fernet(settings.TMS_TOKEN_KEY).decrypt(ciphertext.encode()).decode()


def token_fingerprint(token: str) -> str:
    """A keyed HMAC of the token: tells two tokens apart without revealing either."""
    return salted_hmac("tmsdash.token-fingerprint", token, algorithm="sha256").hexdigest()[:16]


@sensitive_variables()
def token_seal(token: str, *, user_id: int, key: str) -> str:
    """The token encrypted for one page round trip: only `user_id` may open it, only for the
    submission with idempotency key `key`, and only for SEAL_TTL_SECONDS."""
    payload = json.dumps({"user": user_id, "key": key, "token": token})
    return Fernet(settings.TMS_TOKEN_KEY).encrypt(payload.encode()).decode()


@sensitive_variables()
def token_unseal(seal: str, *, user_id: int, key: str) -> str:
    """The token `token_seal` sealed; raises InvalidToken when the seal expired, was altered,
    or was made for another user or another submission."""
    try:
        payload = json.loads(
            Fernet(settings.TMS_TOKEN_KEY).decrypt(seal.encode(), ttl=SEAL_TTL_SECONDS)
        )
    except (InvalidToken, ValueError):
        raise InvalidToken from None
    # A job token's ciphertext decrypts with the same key, but is no JSON object.
    if not isinstance(payload, dict) or not isinstance(payload.get("token"), str):
        raise InvalidToken
    if payload.get("user") != user_id or payload.get("key") != key:
        raise InvalidToken
    return payload["token"]
