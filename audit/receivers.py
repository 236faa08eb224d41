"""Sign-in, failed sign-in, lock-out and sign-out go into the audit trail.

Failed sign-ins are bounded so that nobody can flood the trail: the failure that locks a
username out from an address is recorded as the lock-out, attempts refused during the
lock-out are not recorded, and at most FAILED_SIGNINS_RECORDED_PER_ADDRESS failures from one
address are in a cool-off period. A password sign-in refused before its password was checked
(accounts.backends marks the request `signin_refused` with the reason: password sign-in is off
for the user) is recorded as auth.signin_refused, with method "password" and that reason, and
is bounded with the failures.
"""

from __future__ import annotations

import logging

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record, client_ip

logger = logging.getLogger(__name__)

FAILED_SIGNINS_RECORDED_PER_ADDRESS = 50


@receiver(user_logged_in, dispatch_uid="audit_login")
def record_login(sender, request, user, **kwargs) -> None:
    audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=user, ip_address=client_ip(request))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Set by django-axes for the failure that locks out and for every attempt it refuses.
    if getattr(request, "axes_locked_out", False):
        return
    ip_address = client_ip(request)
    refused = getattr(request, "signin_refused", "")
    recent = AuditEntry.objects.filter(
        Q(event=AuditEntry.Event.AUTH_LOGIN_FAILED)
        | Q(event=AuditEntry.Event.AUTH_SIGNIN_REFUSED, details__method="password"),
        ip_address=ip_address,
        created_at__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
    )
    if recent[:FAILED_SIGNINS_RECORDED_PER_ADDRESS].count() >= FAILED_SIGNINS_RECORDED_PER_ADDRESS:
        logger.warning("failed sign-in from %s not recorded: too many from there", ip_address)
        return
    # Only the username that was tried: never the password, even masked.
    username = str(credentials.get("username", ""))[:150]
    event = AuditEntry.Event.AUTH_SIGNIN_REFUSED if refused else AuditEntry.Event.AUTH_LOGIN_FAILED
    audit_record(
        event=event,
        actor_username=username,
        ip_address=ip_address,
        details={"method": "password", "reason": refused} if refused else None,
    )


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def record_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    # django-axes signals the lock-out again for each attempt it refuses: record it once.
    username = str(username or "")[:150]
    ip_address = client_ip(request)
    if AuditEntry.objects.filter(
        event=AuditEntry.Event.AUTH_LOCKED_OUT,
        actor_username=username,
        ip_address=ip_address,
        created_at__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
    ).exists():
        return
    audit_record(
        event=AuditEntry.Event.AUTH_LOCKED_OUT,
        actor_username=username,
        ip_address=ip_address,
        details={
            "failed_sign_ins": settings.AXES_FAILURE_LIMIT,
            "cool_off_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds()),
        },
    )


@receiver(user_logged_out, dispatch_uid="audit_logout")
def record_logout(sender, request, user, **kwargs) -> None:
    audit_record(event=AuditEntry.Event.AUTH_LOGOUT, actor=user, ip_address=client_ip(request))
