"""Operators' tokens at rest: encrypted while a job needs them, fingerprinted for the record."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.utils.crypto import salted_hmac

__all__ = ["InvalidToken", "token_decrypt", "token_encrypt", "token_fingerprint"]


def token_encrypt(token: str) -> str:
    return Fernet(settings.TMS_TOKEN_KEY).encrypt(token.encode()).decode()


def token_decrypt(ciphertext: str) -> str:
    """The token; raises InvalidToken when the key changed since it was encrypted."""
    return Fernet(settings.TMS_TOKEN_KEY).decrypt(ciphertext.encode()).decode()


def token_fingerprint(token: str) -> str:
    """A keyed HMAC of the token: tells two tokens apart without revealing either."""
    return salted_hmac("tmsdash.token-fingerprint", token, algorithm="sha256").hexdigest()[:16]
