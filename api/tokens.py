"""Personal API tokens: the one module that creates, checks, revokes and removes them.

A token reads `tms_<prefix>_<secret>`: the prefix (8 characters) finds the row, the secret (43
characters, 256 bits) is checked against the SHA-256 kept of the whole token. A secret that
long needs no slow hash. Checking takes the same steps whatever is wrong with a token, so a
caller learns nothing from the answer or its timing beyond "refused".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from api.models import ApiToken
from audit.models import AuditEntry
from audit.services import audit_record

PREFIX_LENGTH = 8
# How often last_used_at is written: a script calling every second costs one write a minute.
LAST_USED_EVERY = timedelta(minutes=1)
# Ended tokens removed per transaction (tokens_remove_ended).
REMOVE_BATCH = 500
# Compared against when the prefix finds nothing, so that an unknown token costs the same.
_NO_DIGEST = hashlib.sha256(b"no such token").hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A token just created: `secret` is the only copy of the token, to be shown once."""

    token: ApiToken
    secret: str


def token_create(
    *,
    user,
    name: str,
    expires_days: int | None = None,
    read_only: bool = False,
    can_approve: bool = False,
    actor=None,
    ip_address: str | None = None,
) -> NewToken:
    """Create a token for `user`, expiring in `expires_days` (default TMS_API_TOKEN_DAYS);
    None with `expires_days=0`, only where TMS_API_TOKEN_NEVER_EXPIRES allows it. Audited,
    with `actor` as who did it: the user on their page; None, a maintainer at a shell.

    Refused (ValidationError) when the user already has TMS_API_TOKENS_PER_USER live tokens,
    however many creates run at once; refused (PermissionDenied) for an inactive user."""
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 100:
        errors["name"] = ["A name has 1 to 100 characters."]
    days = settings.TMS_API_TOKEN_DAYS if expires_days is None else expires_days
    if days < 0 or days > settings.TMS_API_TOKEN_MAX_DAYS:
        errors["expires_days"] = [
            f"A token expires in 1 to {settings.TMS_API_TOKEN_MAX_DAYS} days."
        ]
    elif days == 0 and not settings.TMS_API_TOKEN_NEVER_EXPIRES:
        errors["expires_days"] = [
            "Tokens that never expire are not allowed here (TMS_API_TOKEN_NEVER_EXPIRES)."
        ]
    if errors:
        raise ValidationError(errors)
    if read_only and can_approve:
        raise ValidationError("A read-only token cannot approve: choose one or the other.")
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    secret = f"tms_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        # The owner's row, locked, is what makes two creates at once take turns, so that they
        # cannot both count one token short of the limit (PostgreSQL: the row lock; SQLite:
        # the write lock every transaction takes as it begins, TMS_SQLITE_BUSY_TIMEOUT).
        owner = get_user_model().objects.select_for_update().only("is_active").get(pk=user.pk)
        if not owner.is_active:
            raise PermissionDenied("An inactive user cannot have API tokens.")
        now = timezone.now()
        limit = settings.TMS_API_TOKENS_PER_USER
        if ApiToken.objects.usable(now).filter(user=owner)[:limit].count() >= limit:
            raise ValidationError(
                f"{user.get_username()} already has {limit} live API tokens, the most one user "
                f"may have (TMS_API_TOKENS_PER_USER): revoke one that is no longer used before "
                f"creating another.",
                code="too_many_tokens",
            )
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            digest=_digest(secret),
            read_only=read_only,
            can_approve=can_approve,
            created_at=now,
            expires_at=now + timedelta(days=days) if days else None,
        )
        audit_record(
            event=AuditEntry.Event.API_TOKEN_CREATED,
            actor=actor,
            ip_address=ip_address,
            details={
                "token": prefix,
                "name": name,
                "owner": user.get_username(),
                "read_only": read_only,
                "can_approve": can_approve,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            },
        )
    return NewToken(token=token, secret=secret)


def token_revoke(*, token: ApiToken, actor, ip_address: str | None = None) -> bool:
    """Revoke a token at once: its owner or a superuser may. False when it already was."""
    if token.user_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("You may revoke only your own tokens.")
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            audit_record(
                event=AuditEntry.Event.API_TOKEN_REVOKED,
                actor=actor,
                ip_address=ip_address,
                details={"token": token.prefix, "name": token.name},
            )
    return bool(revoked)


def tokens_revoke_all(*, user, reason: str, actor=None, ip_address: str | None = None) -> int:
    """Revoke every live token of `user` at once, each audited as revoked for `reason`;
    returns how many. Safe to run twice: a token already revoked stays as it was."""
    now = timezone.now()
    with transaction.atomic():
        live = list(
            ApiToken.objects.usable(now).filter(user=user).values_list("pk", "prefix", "name")
        )
        for pk, prefix, name in live:
            if ApiToken.objects.filter(pk=pk, revoked_at__isnull=True).update(revoked_at=now):
                audit_record(
                    event=AuditEntry.Event.API_TOKEN_REVOKED,
                    actor=actor,
                    ip_address=ip_address,
                    details={"token": prefix, "name": name, "reason": reason},
                )
    return len(live)


def tokens_remove_ended(*, now: datetime | None = None) -> int:
    """Remove the tokens revoked, or expired, more than TMS_API_TOKENS_KEEP_DAYS ago; returns
    how many. In batches of REMOVE_BATCH, each its own transaction with one audit entry that
    names the tokens it removed (their prefixes: the entries of their creation and revocation
    keep their names and owners).

    Safe to run again after a failure, and from several hosts at once: each batch takes its
    rows locked, skipping those another has taken (PostgreSQL), or under the database's one
    write lock (SQLite), so that each token is removed, and audited, once."""
    now = now or timezone.now()
    ended_before = now - timedelta(days=settings.TMS_API_TOKENS_KEEP_DAYS)
    ended = ApiToken.objects.filter(
        Q(revoked_at__lt=ended_before) | Q(expires_at__lt=ended_before)
    ).order_by("pk")
    removed = 0
    while True:
        with transaction.atomic():
            batch = dict(
                ended.select_for_update(skip_locked=True).values_list("pk", "prefix")[:REMOVE_BATCH]
            )
            if not batch:
                return removed
            ApiToken.objects.filter(pk__in=batch).delete()
            removed += len(batch)
            audit_record(
                event=AuditEntry.Event.API_TOKENS_REMOVED,
                details={
                    "count": len(batch),
                    "tokens": sorted(batch.values()),
                    "ended_before": ended_before.isoformat(),
                },
            )


def _usable(token: ApiToken, now: datetime) -> bool:
    """ApiToken.objects.usable(now), for a token in hand."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def token_check(secret: str) -> ApiToken | None:
    """The usable token `secret` is, with its user; None for anything else (unknown,
    malformed, revoked, expired, or its user inactive), after the same work either way."""
    parts = secret.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == "tms" else ""
    now = timezone.now()
    # The prefix is unique: one row or none, read without an order or the usable() filter,
    # whose building cost more than the read; revoked or expired is checked below.
    found = list(ApiToken.objects.select_related("user").filter(prefix=prefix)[:1])
    token = found[0] if found else None
    matches = hmac.compare_digest(token.digest if token else _NO_DIGEST, _digest(secret))
    if token is None or not matches or not _usable(token, now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
