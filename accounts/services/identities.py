"""Who a provider's claims name: the user found by issuer and subject (created at their first
sign-in), with the name, address, groups and flags the claims give them, every time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Identity
from audit.models import AuditEntry
from audit.services import audit_record

logger = logging.getLogger(__name__)

# Targets of OIDC_GROUP_MAP that set a flag rather than name a group.
FLAGS = ("staff", "superuser")


class SignInRefused(Exception):
    """The provider vouched for someone the dashboard does not let in; the reason is for the
    page and the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mapped_targets(provider_groups: object) -> set[str]:
    """The dashboard groups and flags the provider's groups map to."""
    if isinstance(provider_groups, str):
        provider_groups = [provider_groups]
    if not isinstance(provider_groups, list | tuple):
        return set()
    return {
        target
        for group in provider_groups
        if isinstance(group, str)
        for target in settings.OIDC_GROUP_MAP.get(group, [])
    }


def identity_sign_in(claims: Mapping[str, Any], *, ip_address: str | None) -> User:
    """The user the claims name, created at their first sign-in and brought up to date at
    every one: username, e-mail, groups, staff and superuser status. Refuses (SignInRefused,
    audited) a person with no mapped group or one deactivated in the dashboard."""
    issuer, subject = settings.OIDC_ISSUER, str(claims.get("sub") or "")
    targets = mapped_targets(claims.get(settings.OIDC_GROUPS_CLAIM))
    name = _claim(claims, settings.OIDC_USERNAME_CLAIM) or subject
    if not subject:
        raise _refused("the provider's token names nobody (no subject)", name, ip_address)
    if not targets:
        raise _refused(
            "your account at the identity provider is in no group that this dashboard maps "
            "to a role: ask your administrator for access",
            name,
            ip_address,
        )
    with transaction.atomic():
        identity = _locked(issuer, subject)
        if identity is None:
            identity = _create_once(issuer, subject, name, ip_address)
        user = identity.user
        if not user.is_active and identity.suspended_at is None:
            raise _refused(
                "your dashboard account was deactivated: ask your administrator",
                user.get_username(),
                ip_address,
                user=user,
            )
        _update(user, claims, targets, ip_address)
        identity.last_signed_in_at = timezone.now()
        identity.suspended_at = None
        identity.save(update_fields=["last_signed_in_at", "suspended_at"])
    return user


def identity_refresh(identity: Identity, claims: Mapping[str, Any]) -> None:
    """A renewal's claims applied: groups and flags recomputed; refused (SignInRefused) when
    they name another subject or map to nothing now. The caller audits the refusal."""
    if str(claims.get("sub") or "") != identity.subject:
        raise SignInRefused("the provider's renewed token names another person")
    targets = mapped_targets(claims.get(settings.OIDC_GROUPS_CLAIM))
    if not targets:
        raise SignInRefused("the person is no longer in a group this dashboard maps to a role")
    with transaction.atomic():
        _update(identity.user, claims, targets, None)


def _claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip()[:150] if isinstance(value, str) else ""


def _locked(issuer: str, subject: str) -> Identity | None:
    """The identity, locked until the sign-in's transaction ends (PostgreSQL), with its user."""
    return (
        Identity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )


def _create_once(issuer: str, subject: str, name: str, ip_address: str | None) -> Identity:
    """The identity created, or the one a concurrent first sign-in of the same person created
    a moment before (the constraint on issuer and subject lets one through)."""
    try:
        with transaction.atomic():
            return _create(issuer, subject, name, ip_address)
    except IntegrityError:
        identity = _locked(issuer, subject)
        if identity is None:
            raise SignInRefused("another sign-in was making this account: try again") from None
        return identity


def _create(issuer: str, subject: str, name: str, ip_address: str | None) -> Identity:
    username = _free_username(name)
    user = User(username=username)
    user.set_unusable_password()
    user.save()
    identity = Identity.objects.create(user=user, issuer=issuer, subject=subject)
    audit_record(
        event=AuditEntry.Event.AUTH_USER_CREATED,
        actor=user,
        ip_address=ip_address,
        details={"issuer": issuer, "subject": subject},
    )
    return identity


def _free_username(name: str) -> str:
    """`name`, or `name-2`, `name-3`... when another account holds it: a username never finds
    a user, so a provider's name that a local account already uses does not reach it."""
    base = name[:140]
    candidate, n = base, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _update(user: User, claims: Mapping[str, Any], targets: set[str], ip_address) -> None:
    """Sets what the claims say: e-mail, username (when free), groups the map manages, and the
    staff and superuser flags. Audits the groups and flags that changed."""
    email = _claim(claims, settings.OIDC_EMAIL_CLAIM)
    name = _claim(claims, settings.OIDC_USERNAME_CLAIM)
    if name and name != user.username and not User.objects.filter(username=name).exists():
        user.username = name
    user.email = email[:254]
    before = _roles(user)
    managed = {t for targets_ in settings.OIDC_GROUP_MAP.values() for t in targets_} - set(FLAGS)
    wanted = targets - set(FLAGS)
    groups = {group.name: group for group in Group.objects.filter(name__in=managed)}
    missing = sorted(wanted - set(groups))
    if missing:
        logger.error("OIDC_GROUP_MAP names groups the dashboard does not have: %s", missing)
    user.is_staff = "staff" in targets
    user.is_superuser = "superuser" in targets
    user.is_active = True
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # Another sign-in took the name a moment ago: keep the one this user has.
        user.username = User.objects.get(pk=user.pk).username
        user.save()
    user.groups.remove(*[g for name_, g in groups.items() if name_ not in wanted])
    user.groups.add(*[g for name_, g in groups.items() if name_ in wanted])
    after = _roles(user)
    if before != after:
        audit_record(
            event=AuditEntry.Event.AUTH_GROUPS_CHANGED,
            actor=user,
            ip_address=ip_address,
            details={
                "added": sorted(after - before),
                "removed": sorted(before - after),
                **({"unknown_groups": missing} if missing else {}),
            },
        )


def _roles(user: User) -> set[str]:
    roles = set(user.groups.values_list("name", flat=True)) if user.pk else set()
    return roles | {flag for flag in FLAGS if getattr(user, f"is_{flag}")}


def _refused(reason: str, name: str, ip_address: str | None, *, user: User | None = None):
    audit_record(
        event=AuditEntry.Event.AUTH_SIGNIN_REFUSED,
        actor=user,
        actor_username=name[:150],
        ip_address=ip_address,
        details={"reason": reason, "through": "identity provider"},
    )
    return SignInRefused(reason)
