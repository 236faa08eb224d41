"""Operators' tokens at rest: encrypted while a job needs them, fingerprinted for the record,
and sealed while a Set Action waits for its operator's confirmation; clusters' stored
credentials and webhook secrets are encrypted alike.

TMS_TOKEN_KEY holds one Fernet key, or several separated by commas while the key is rotated:
the first encrypts, each of them decrypts, and `token_reencrypt` moves a ciphertext to the
first (the command rotate_token_key does it for every stored secret)."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

__all__ = [
    "MAX_TOKEN_LENGTH",
    "SEAL_TTL_SECONDS",
    "InvalidToken",
    "token_decrypt",
    "token_encrypt",
    "token_errors",
    "token_fingerprint",
    "token_key_first",
    "token_reencrypt",
    "token_seal",
    "token_unseal",
]

MAX_TOKEN_LENGTH = 4096

# How long an operator has between the review of a Set Action and its confirmation.
SEAL_TTL_SECONDS = 15 * 60


def token_errors(token: str) -> list[str]:
    """What is wrong with a token to send to a cluster (none: fine); never repeats it."""
    if not token:
        return ["Give the cluster API token."]
    if len(token) > MAX_TOKEN_LENGTH:
        return [f"The token is longer than {MAX_TOKEN_LENGTH} characters."]
    if any(ord(c) < 32 or ord(c) == 127 for c in token):
        return ["The token contains control characters (a pasted line break?)."]
    # It travels in an HTTP header, which takes visible ASCII only (see jobs.upstream).
    if not all(33 <= ord(c) <= 126 for c in token):
        return ["The token may hold only visible ASCII characters, without spaces."]
    return []


def _fernet() -> MultiFernet:
    """TMS_TOKEN_KEY's keys: the first encrypts, each decrypts."""
    return MultiFernet([Fernet(key.strip()) for key in settings.TMS_TOKEN_KEY.split(",")])


def token_encrypt(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode()


def token_decrypt(ciphertext: str) -> str:
    """The token; raises InvalidToken when no key of TMS_TOKEN_KEY encrypted it."""
    return _fernet().decrypt(ciphertext.encode()).decode()


def token_reencrypt(ciphertext: str) -> str:
    """The same secret encrypted with TMS_TOKEN_KEY's first key (its timestamp kept); raises
    InvalidToken when no key of TMS_TOKEN_KEY encrypted it."""
    return _fernet().rotate(ciphertext.encode()).decode()


def token_key_first(ciphertext: str) -> bool:
    """Whether the first key of TMS_TOKEN_KEY encrypted `ciphertext` (nothing to rotate)."""
    first = settings.TMS_TOKEN_KEY.split(",")[0].strip()
    try:
        Fernet(first).decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def token_fingerprint(token: str) -> str:
    """A keyed HMAC of the token: tells two tokens apart without revealing either."""
    return salted_hmac("tmsdash.token-fingerprint", token, algorithm="sha256").hexdigest()[:16]


@sensitive_variables()
def token_seal(token: str, *, user_id: int, key: str) -> str:
    """The token encrypted for one page round trip: only `user_id` may open it, only for the
    submission with idempotency key `key`, and only for SEAL_TTL_SECONDS."""
    payload = json.dumps({"user": user_id, "key": key, "token": token})
    return _fernet().encrypt(payload.encode()).decode()


@sensitive_variables()
def token_unseal(seal: str, *, user_id: int, key: str) -> str:
    """The token `token_seal` sealed; raises InvalidToken when the seal expired, was altered,
    or was made for another user or another submission."""
    try:
        payload = json.loads(_fernet().decrypt(seal.encode(), ttl=SEAL_TTL_SECONDS))
    except (InvalidToken, ValueError):
        raise InvalidToken from None
    # A job token's ciphertext decrypts with the same key, but is no JSON object.
    if not isinstance(payload, dict) or not isinstance(payload.get("token"), str):
        raise InvalidToken
    if payload.get("user") != user_id or payload.get("key") != key:
        raise InvalidToken
    return payload["token"]
