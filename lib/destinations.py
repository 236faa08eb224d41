"""Where a URL points, without what its path, query or user part may hold as a credential."""

from __future__ import annotations

from urllib.parse import urlsplit

UNREADABLE = "(cannot be read: the encryption key changed)"


def url_destination(url: str | None) -> str:
    """`https://hooks.slack.com/…` for a URL with a path or query, the URL itself when it has
    neither; None (a stored URL no key decrypts) says so. Never the user name or password."""
    if url is None:
        return UNREADABLE
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(not a valid URL)"
    if not parts.scheme or not parts.hostname:
        return "(not a valid URL)"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    rest = (parts.path not in ("", "/")) or parts.query or parts.fragment
    return shown + ("/…" if rest else "/")
