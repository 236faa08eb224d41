"""A break-glass user's password sign-in is audited and told to the admins."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from accounts.services.local import LOCAL_BACKEND, break_glass_record, is_break_glass
from audit.services import client_ip


@receiver(user_logged_in, dispatch_uid="accounts_break_glass")
def record_break_glass(sender, request, user, **kwargs) -> None:
    if getattr(user, "backend", None) != LOCAL_BACKEND:
        return
    if is_break_glass(user.get_username()):
        break_glass_record(user=user, ip_address=client_ip(request))
