"""The one way to write the audit trail: one entry at a time, or many imported at once, each
chained to the one before it (audit.chain)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.http import HttpRequest

from audit.chain import canonical, chain_head_locked, entry_hash
from audit.models import AuditEntry

BATCH = 500


def audit_record(
    *,
    event: str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    actor_username: str = "",
    job_id: uuid.UUID | str | None = None,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit trail and return it.

    `actor_username` defaults to the actor's username; give it alone for someone without an
    account (a failed sign-in). Call it inside the transaction of the change it records, so
    that the change and its entry are committed together or not at all.
    """
    if actor is not None and not actor.is_authenticated:
        actor = None
    entry = AuditEntry(
        event=event,
        actor=actor,
        actor_username=actor_username or (actor.get_username() if actor else ""),
        job_id=job_id,
        ip_address=ip_address,
        details=details or {},
    )
    with transaction.atomic():
        _chain([entry], *chain_head_locked())
        entry.save(force_insert=True)
    return entry


def audit_bulk_append(entries: list[AuditEntry]) -> None:
    """Append many entries built elsewhere, chained in the order given, in one statement per
    batch of BATCH.

    For imports of history (a legacy audit file can hold millions of rows, and one INSERT per
    row would be far too slow). It only adds new entries, which the append-only guard allows;
    call it inside the transaction of the change it records.
    """
    if not entries:
        return
    with transaction.atomic():
        _chain(entries, *chain_head_locked())
        AuditEntry.objects.bulk_create(entries, batch_size=BATCH)


def _chain(entries: list[AuditEntry], seq: int, prev_hash: str) -> None:
    """Give each entry its place after (seq, prev_hash) and its hash, as the database will
    hold its content (the IP address as the field stores it)."""
    ip_field = AuditEntry._meta.get_field("ip_address")
    for entry in entries:
        seq += 1
        entry.seq = seq
        entry.prev_hash = prev_hash
        entry.hash = prev_hash = entry_hash(
            prev_hash,
            canonical(
                seq=seq,
                created_at=entry.created_at,
                actor_username=entry.actor_username,
                event=entry.event,
                job_id=entry.job_id,
                ip_address=ip_field.get_prep_value(entry.ip_address),
                details=entry.details,
            ),
        )


def signin_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username a sign-in tried, for django-axes (AXES_USERNAME_CALLABLE), cut to the 150
    characters a username can have: a longer one names no user, and one longer than the 255
    of axes's column was a 500 on PostgreSQL."""
    source = credentials or getattr(request, "data", request.POST)
    username = source.get("username")
    return None if username is None else str(username)[:150]


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from.

    Behind TMS_TRUSTED_PROXIES proxies, each of which appends the address it received the
    request from to X-Forwarded-For, the client is that many entries from the right; entries
    further left were written by the client and are not believed. Without trusted proxies, or
    when the header does not hold an address where one must be, it is the peer's address.
    """
    if request is None:
        return None
    peer = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TMS_TRUSTED_PROXIES
    if not proxies:
        return peer
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < proxies:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return peer
