"""Sign-in, failed sign-in and sign-out go into the audit trail."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import AuditEntry
from audit.services import audit_record, client_ip


@receiver(user_logged_in, dispatch_uid="audit_login")
def record_login(sender, request, user, **kwargs) -> None:
    audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=user, ip_address=client_ip(request))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the username that was tried: never the password, even masked.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        event=AuditEntry.Event.AUTH_LOGIN_FAILED,
        actor_username=username,
        ip_address=client_ip(request),
    )


@receiver(user_logged_out, dispatch_uid="audit_logout")
def record_logout(sender, request, user, **kwargs) -> None:
    audit_record(event=AuditEntry.Event.AUTH_LOGOUT, actor=user, ip_address=client_ip(request))
