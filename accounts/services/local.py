"""Password sign-in: who may use it, and the record of each break-glass sign-in.

With TMS_LOCAL_SIGNIN false, only the users named in TMS_BREAK_GLASS_USERS may sign in with a
password (everyone else signs in through the company's provider). Every password sign-in of a
break-glass user, whatever TMS_LOCAL_SIGNIN says, is audited (auth.break_glass) and signalled
(accounts.signals.break_glass_signin: notifications e-mails the admins), both at once.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from accounts.signals import break_glass_signin
from audit.models import AuditEntry
from audit.services import audit_record

# The backend of password sign-in (AUTHENTICATION_BACKENDS): a user it signed in carries this
# path as `user.backend`, which tells a password sign-in from one through the provider.
LOCAL_BACKEND = "accounts.backends.LocalPasswordBackend"
# Why a password sign-in was refused before any password was checked: the backend marks the
# request with it, and the audit entry (auth.signin_refused) gives it as its reason.
LOCAL_SIGNIN_OFF = "local_signin_off"


def is_break_glass(username: str) -> bool:
    """Whether `username` is one of TMS_BREAK_GLASS_USERS (exactly, as usernames are)."""
    return username in settings.TMS_BREAK_GLASS_USERS


def local_signin_allowed(username: str) -> bool:
    """Whether `username` may sign in with a password at all."""
    return settings.TMS_LOCAL_SIGNIN or is_break_glass(username)


def break_glass_record(
    *, user: AbstractBaseUser, ip_address: str | None, at: datetime | None = None
) -> AuditEntry:
    """Audit a break-glass user's password sign-in and signal it, in one transaction: the
    entry and the admins' notices are committed together or not at all."""
    at = at or timezone.now()
    with transaction.atomic():
        entry = audit_record(
            event=AuditEntry.Event.AUTH_BREAK_GLASS,
            actor=user,
            ip_address=ip_address,
            details={"local_signin": settings.TMS_LOCAL_SIGNIN},
        )
        break_glass_signin.send(
            sender=AuditEntry,
            user=user,
            at=at,
            ip_address=ip_address,
            audit_entry_id=entry.pk,
        )
    return entry
