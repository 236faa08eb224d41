"""Dashboard sessions the provider vouches for: started at sign-in, renewed with the provider's
refresh token while it agrees, ended at sign-out (at the provider too) or when it refuses.

A session through the provider lasts at most OIDC_SESSION_MAX_AGE (its Django expiry). Every
OIDC_RENEW_SECONDS the next request of its user renews it: one request claims the renewal (a
conditional update, so that a page's parallel requests renew once), sends the refresh token,
checks the new ID token and applies its groups. When the provider refuses, the person was
disabled or removed there, or left every mapped group: every session of theirs ends and they
are made inactive, so that their personal API tokens stop at once, until the provider signs
them in again. When the provider cannot be reached, the session goes on and the renewal is
tried again a little later.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Identity, ProviderSession
from accounts.services.identities import SignInRefused, identity_refresh
from accounts.services.provider import (
    ProviderError,
    ProviderUnreachable,
    provider_call,
    provider_client,
)
from audit.models import AuditEntry
from audit.services import audit_record
from jobs.tokens import InvalidToken, token_decrypt, token_encrypt

logger = logging.getLogger(__name__)

# The session's next renewal, seconds since the epoch; absent in a session made by password.
RENEW_AT = "tmsdash_oidc_renew_at"
# How long one request holds the renewal it claimed before another may try.
CLAIM_SECONDS = 30


@dataclass(frozen=True)
class Renewal:
    """What a renewal came to: `ended` with the words to show the user, or not."""

    ended: bool = False
    reason: str = ""


def provider_session_start(session: SessionBase, user: User, token: dict) -> None:
    """Records the session a sign-in through the provider just made (after Django's login,
    which gave the session its key): when it ends, when it is renewed, the provider's refresh
    and ID tokens, encrypted. The access token is not kept."""
    now = timezone.now()
    max_age = min(settings.OIDC_SESSION_MAX_AGE, settings.TMS_SESSION_LIFETIME)
    ProviderSession.objects.filter(expires_at__lt=now).delete()
    ProviderSession.objects.create(
        session_key=session.session_key,
        identity=user.identity,
        refresh_token=_encrypt(token.get("refresh_token")),
        id_token=_encrypt(token.get("id_token")),
        signed_in_at=now,
        expires_at=now + datetime.timedelta(seconds=max_age),
        renew_at=now + datetime.timedelta(seconds=settings.OIDC_RENEW_SECONDS),
    )
    session.set_expiry(now + datetime.timedelta(seconds=max_age))
    session[RENEW_AT] = int(now.timestamp()) + settings.OIDC_RENEW_SECONDS


def provider_session_renew(session: SessionBase, ip_address: str | None) -> Renewal:
    """Renews the session when its time has come (see the module's description)."""
    due = session.get(RENEW_AT)
    now = timezone.now()
    if due is None or now.timestamp() < due:
        return Renewal()
    key = session.session_key
    claim = now + datetime.timedelta(seconds=CLAIM_SECONDS)
    if not ProviderSession.objects.filter(session_key=key, renew_at__lte=now).update(
        renew_at=claim
    ):
        row = ProviderSession.objects.filter(session_key=key).first()
        if row is None:
            return Renewal(ended=True, reason="Your company sign-in ended.")
        session[RENEW_AT] = int(row.renew_at.timestamp())
        return Renewal()
    row = ProviderSession.objects.select_related("identity__user").get(session_key=key)
    refresh_token = _decrypt(row.refresh_token)
    if not refresh_token:
        row.delete()
        return Renewal(
            ended=True,
            reason="Your company sign-in is due for renewal: sign in again.",
        )
    try:
        claims, token = _renewed_claims(refresh_token)
        identity_refresh(row.identity, claims)
    except ProviderUnreachable as exc:
        logger.warning("session of %s not renewed, tried again later: %s", row.identity.user, exc)
        session[RENEW_AT] = int(claim.timestamp())
        return Renewal()
    except (ProviderError, SignInRefused) as exc:
        reason = getattr(exc, "reason", str(exc))
        if isinstance(exc, ProviderError) and exc.code != "invalid_grant":
            row.delete()
            _audit_refused(row.identity, reason, ip_address, suspended=False)
            return Renewal(ended=True, reason="Your company sign-in could not be renewed.")
        identity_suspend(row.identity, reason, ip_address)
        return Renewal(
            ended=True,
            reason="Your company sign-in ended: the identity provider no longer lets you in.",
        )
    row.renew_at = now + datetime.timedelta(seconds=settings.OIDC_RENEW_SECONDS)
    row.refresh_token = _encrypt(token.get("refresh_token")) or row.refresh_token
    row.id_token = _encrypt(token.get("id_token")) or row.id_token
    row.save(update_fields=["renew_at", "refresh_token", "id_token"])
    session[RENEW_AT] = int(row.renew_at.timestamp())
    logger.info("session of %s renewed with the identity provider", row.identity.user)
    return Renewal()


def _renewed_claims(refresh_token: str) -> tuple[dict, dict]:
    client = provider_client()
    token = provider_call(
        client.fetch_access_token,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        # The scope the refresh token was granted, whatever OIDC_SCOPES asked for.
        scope=None,
    )
    if "id_token" in token:
        claims = provider_call(client.parse_id_token, token, nonce=None)
    else:
        claims = provider_call(client.userinfo, token=token)
    return dict(claims), token


def identity_suspend(identity: Identity, reason: str, ip_address: str | None) -> None:
    """The provider no longer vouches for this person: every session of theirs ends and they
    are inactive (their personal API tokens stop) until the provider signs them in again."""
    with transaction.atomic():
        user = identity.user
        user.is_active = False
        user.save(update_fields=["is_active"])
        identity.suspended_at = timezone.now()
        identity.save(update_fields=["suspended_at"])
        identity.sessions.all().delete()
        _audit_refused(identity, reason, ip_address, suspended=True)


def user_deactivate(user: User, *, by: str) -> int:
    """Deactivates a user who will not come back: inactive (personal API tokens stop at once,
    every session ends at its next request), their provider sessions removed, and no sign-in
    through the provider makes them active again until an admin does. Returns how many
    provider sessions ended."""
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        ended = 0
        identity = Identity.objects.filter(user=user).first()
        if identity is not None:
            identity.suspended_at = None
            identity.save(update_fields=["suspended_at"])
            ended, _ = identity.sessions.all().delete()
        audit_record(
            event=AuditEntry.Event.USER_DEACTIVATED,
            actor_username=by[:150],
            details={"user": user.get_username(), "provider_sessions_ended": ended},
        )
    return ended


def provider_session_end(session: SessionBase) -> str | None:
    """At sign-out: forgets the session's provider tokens and returns where to end the
    session at the provider too (RP-initiated logout), or None when it was not made through
    the provider or the provider has no end-session endpoint."""
    row = ProviderSession.objects.filter(session_key=session.session_key).first()
    if row is None:
        return None
    id_token = _decrypt(row.id_token)
    row.delete()
    try:
        client = provider_client()
        if not client.server_metadata.get("end_session_endpoint"):
            return None
        return client.create_logout_url(
            post_logout_redirect_uri=settings.TMS_PUBLIC_URL + reverse("login"),
            id_token_hint=id_token or None,
            client_id=settings.OIDC_CLIENT_ID,
        )["url"]
    except (ProviderError, ProviderUnreachable):
        return None


def _audit_refused(identity: Identity, reason: str, ip_address, *, suspended: bool) -> None:
    audit_record(
        event=AuditEntry.Event.AUTH_RENEWAL_REFUSED,
        actor=identity.user,
        ip_address=ip_address,
        details={"reason": reason, "suspended": suspended},
    )


def _encrypt(secret: object) -> str:
    return token_encrypt(secret) if isinstance(secret, str) and secret else ""


def _decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return token_decrypt(ciphertext)
    except InvalidToken:
        return ""
