"""Strip secrets from data that came from outside (legacy payloads, audit details, free text).

The legacy dashboard stored what the page posted, operator's API token included, and wrote
free text that could quote a header. Nothing of that may reach our database: values under
secret-looking keys are replaced at any depth, and tokens are cut out of free text.
"""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[REDACTED]"

# Compared against the key lowercased with everything but letters and digits removed, so that
# "api_token", "apiToken" and "X-Auth-Token" all contain "token".
_SECRET_KEY_PARTS = (
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "apikey",
    "credential",
    "cookie",
    "privatekey",
)
_SECRET_KEYS = {"auth", "pwd", "pass"}

_KEY_PATTERN = (
    r"[\w.-]*(?:token|passw(?:or)?d|secret|authori[sz]ation|api[_-]?key|credential|cookie)[\w.-]*"
)
# `key: value`, `key=value`, `"key": "value"` and `'key': 'value'` in free text (query strings,
# headers, Python reprs, JSON quoted inside a string). An unquoted value may start with a scheme
# word ("Authorization: Bearer abc") that belongs to it.
_KEY_VALUE_RE = re.compile(
    r"(?P<key>(?P<kq>[\"']?)" + _KEY_PATTERN + r"(?P=kq))"
    r"(?P<sep>\s*[:=]\s*)"
    r"(?:(?P<q>[\"'])(?:(?!(?P=q)).)*(?P=q)"
    r"|(?:(?:bearer|basic|token)\s+)?[^\s,;&}\]\"']+)",
    re.IGNORECASE,
)
# Searched in lowercased text before the patterns below run: most strings (CIDs, URLs,
# action names) hold none of these words, and one search is far cheaper than a substitution.
_KEY_WORD_RE = re.compile(r"token|passw|secret|authori[sz]ation|api[_-]?key|credential|cookie")
_BEARER_RE = re.compile(r"\bbearer\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# https://user:password@host
_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]+):[^@/\s]+@", re.I)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (token, password, authorization, ...)."""
    folded = re.sub(r"[^a-z0-9]", "", key.lower())
    return folded in _SECRET_KEYS or any(part in folded for part in _SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """`text` with tokens, passwords and `Bearer ...` values replaced by [REDACTED]."""
    folded = text.lower()
    if _KEY_WORD_RE.search(folded):
        text = _KEY_VALUE_RE.sub(_key_value, text)
    if "bearer" in folded:
        text = _BEARER_RE.sub(f"Bearer {REDACTED}", text)
    if "@" in text and "://" in text:
        text = _URL_PASSWORD_RE.sub(rf"\g<head>:{REDACTED}@", text)
    return text


def _key_value(match: re.Match[str]) -> str:
    quote = match.group("q") or ""
    return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with every secret replaced by [REDACTED], at any depth.

    The whole value under a secret key goes, whatever its type; strings elsewhere go through
    `redact_text`; a `[name, value]` pair whose name is a secret (a header list) loses its value.
    """
    # Strings first: they are most of the values.
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], str) and is_secret_key(value[0]):
            return [value[0], REDACTED]
        return [redact(item) for item in value]
    return value
