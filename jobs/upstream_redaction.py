"""Text from a cluster made safe to store and show: the operator's token redacted however the
cluster echoed it back (in another case, percent-encoded, base64-encoded), control characters
removed, whitespace collapsed, the length capped; and an answer's body kept as it came, its
lines and spacing intact, with the token redacted all the same.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote, quote_plus

_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_WHITESPACE = re.compile(r"\s+")
# Control characters but tab and line ends: PostgreSQL stores no NUL in text, and none of
# them shows on a page.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A base64 part shorter than this is not looked for in the cluster's text (a short token's
# encoded fragments would match ordinary words); the token as sent always is.
_MIN_ENCODED_ECHO = 8


def _cleaner(token: str) -> Callable[[str, int], str]:
    """`clean(text, limit)`: text from the cluster made safe to store and show. A closure, not
    a partial, whose repr in an error report would show the token."""
    echoed = _echo_pattern(token) if token else None

    def clean(text: str, limit: int) -> str:
        return _clean(text, limit, echoed)

    return clean


def _body_keeper(token: str) -> Callable[[bytes, int], tuple[str, bool]]:
    """`keep(body, limit)`: an answer's body as a page may show it, and whether it was cut.
    Decoded as UTF-8 (invalid bytes replaced), the token redacted in the whole body before
    anything is cut (no cut can leave part of it behind), control characters but tabs and
    line ends replaced, then at most `limit` bytes in UTF-8, cut between characters. A
    closure, as `_cleaner` is."""
    echoed = _echo_pattern(token) if token else None

    def keep(body: bytes, limit: int) -> tuple[str, bool]:
        text = body.decode("utf-8", errors="replace")
        text = echoed.sub("[redacted]", text) if echoed else text
        encoded = _CONTROL.sub("\ufffd", text).encode()
        return encoded[:limit].decode(errors="ignore"), len(encoded) > limit

    return keep


def _echo_pattern(token: str) -> re.Pattern[str]:
    """The token as a cluster may echo it: as sent, in another case, percent-encoded, or
    base64-encoded (alone or inside a longer encoded text, at any of the three byte alignments,
    in either alphabet)."""
    forms = {token, quote(token, safe=""), quote_plus(token, safe="")}
    raw = token.encode()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode()
            # Only the characters made of the token's bits alone: each holds 6 of them.
            core = encoded[-(-shift * 8 // 6) : (shift + len(raw)) * 8 // 6]
            if len(core) >= _MIN_ENCODED_ECHO:
                forms.add(core)
    alternatives = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)


def _clean(text: str, limit: int, echoed: re.Pattern[str] | None) -> str:
    """No token, no control characters, whitespace collapsed, at most `limit` characters."""
    # Redact before cutting anything, so that no cut can leave part of the token behind.
    text = echoed.sub("[redacted]", text) if echoed else text
    text = text[: limit * 4]
    text = "".join(" " if unicodedata.category(ch) in _INVISIBLE_CATEGORIES else ch for ch in text)
    return _shorten(_WHITESPACE.sub(" ", text).strip(), limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
