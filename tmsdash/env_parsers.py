"""The parsers of tmsdash's settings: each turns an environment variable's text into a value,
or raises ValueError with a message that never echoes the value (some are secrets); `env`
reads a variable with one of them and names the variable in the error."""

from __future__ import annotations

import base64
import binascii
import os
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable
from typing import TypeVar

import environ
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected one of: " + ", ".join(sorted(_TRUE | _FALSE)))


def _list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _time_zone(raw: str) -> str:
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as UTC or Europe/Berlin") from None
    return raw


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("expected " + " or ".join(choices))
        return value

    return parse


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _at_most(limit: int, named: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = _positive_int(raw)
        if value > limit:
            raise ValueError(f"expected a whole number from 1 to {limit} ({named})")
        return value

    return parse


# The shortest audit retention housekeeping takes (TMS_AUDIT_RETENTION_DAYS): a week, so that
# a break the hourly chain check finds (it walks the last day) is still in the database, not
# only in an archive, for whoever looks at it after a weekend.
AUDIT_RETENTION_MIN_DAYS = 7


def _audit_retention_days(raw: str) -> int:
    value = int(raw)
    if value < AUDIT_RETENTION_MIN_DAYS:
        raise ValueError(
            f"expected a whole number of days, at least {AUDIT_RETENTION_MIN_DAYS} (a week: "
            "the audit trail is kept at least that long)"
        )
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def _seconds(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected a whole number of seconds, 0 or more")
    return value


# deploy/tmsdash.env ships every secret as a "replace-with-..." placeholder: a host started
# before its secrets were filled in refuses to start, rather than run with a published secret.
_PLACEHOLDER = "replace-with-"


def _not_placeholder(raw: str) -> str:
    if raw.startswith(_PLACEHOLDER):
        raise ValueError(
            "it still holds the placeholder of deploy/tmsdash.env; set a long random string, "
            'for example from python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    return raw


def _secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("expected a random string of at least 16 characters")
    return _not_placeholder(raw)


def _regex(raw: str) -> str:
    try:
        re.compile(raw)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return raw


def _fernet_key(raw: str) -> str:
    """One Fernet key, or several separated by commas (a key rotation: the first encrypts,
    each decrypts; see docs/credentials.md)."""
    keys = raw.split(",")
    for key in keys:
        try:
            valid = len(base64.urlsafe_b64decode(key.strip().encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ValueError(
                "expected a Fernet key (32 bytes in URL-safe base64, 44 characters), or "
                "several separated by commas"
            )
    return raw


_ENGINES = {"django.db.backends.sqlite3": "sqlite", "django.db.backends.postgresql": "postgres"}


def _database(raw: str) -> dict:
    config = environ.Env.db_url_config(raw) if re.match(r"^[a-z0-9+]+://", raw) else {}
    if config.get("ENGINE") not in _ENGINES:
        raise ValueError(
            "expected sqlite:////absolute/path.sqlite3 or postgres://user:password@host:port/name"
        )
    return config


def _email(raw: str) -> dict:
    """EMAIL_URL as Django's EMAIL_* settings: smtp:// (?tls=True or ?ssl=True to encrypt),
    smtps:// or smtp+tls:// (STARTTLS), smtp+ssl:// (TLS from the start)."""
    if not re.match(r"^(smtp|smtps|smtp\+tls|smtp\+ssl)://[^/?#]", raw):
        raise ValueError("expected smtp://user:password@host:port/ (or smtps://, smtp+ssl://)")
    config = environ.Env.email_url_config(raw)
    options = {key.lower(): value for key, value in config.pop("OPTIONS", {}).items()}
    mail = {name: value for name, value in config.items() if name != "EMAIL_FILE_PATH"}
    mail["EMAIL_HOST_USER"] = mail.get("EMAIL_HOST_USER") or ""
    mail["EMAIL_HOST_PASSWORD"] = mail.get("EMAIL_HOST_PASSWORD") or ""
    for option, name in (("tls", "EMAIL_USE_TLS"), ("ssl", "EMAIL_USE_SSL")):
        if option in options:
            mail[name] = _bool(str(options[option]))
    if mail.get("EMAIL_USE_TLS") and mail.get("EMAIL_USE_SSL"):
        raise ValueError("choose tls or ssl, not both")
    return mail


def _url(raw: str) -> str:
    if not re.match(r"^https?://[^/?#\s]+", raw):
        raise ValueError("expected an http:// or https:// address such as https://tms.example")
    return raw.rstrip("/")


def _issuer(raw: str) -> str:
    """An OpenID provider's issuer: https, or http on loopback only (the tests' provider)."""
    parsed = urllib.parse.urlsplit(raw)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if not parsed.hostname or parsed.query or parsed.fragment:
        raise ValueError("expected the issuer's address, such as https://login.example.com/realm")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise ValueError("an issuer must be https:// (http:// only on 127.0.0.1 or localhost)")
    return raw.rstrip("/")


def _group_map(raw: str) -> dict[str, list[str]]:
    """provider-group=dashboard-group pairs, comma-separated; a provider group may be named
    more than once, mapping it to several dashboard groups."""
    mapping: dict[str, list[str]] = {}
    for pair in _list(raw):
        provider, sep, dashboard = (part.strip() for part in pair.partition("="))
        if not sep or not provider or not dashboard:
            raise ValueError("expected provider-group=dashboard-group pairs, comma-separated")
        mapping.setdefault(provider, []).append(dashboard)
    return mapping


def env(name: str, parse: Callable[[str], T], default: T) -> T:
    """The variable `name` parsed by `parse`, or `default` when it is unset or empty."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"The environment variable {name} is malformed: {exc}."
        ) from None
