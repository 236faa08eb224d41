"""A user deactivated loses their API tokens.

token_check refuses a deactivated user's tokens from that moment, however the account was
deactivated; revoking them as well shows them ended everywhere (the admin, the audit trail)
and keeps them ended should the account be activated again: its scripts then need new tokens,
made on purpose. Who deactivated the account is in the admin's history of the user.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from api.tokens import tokens_revoke_all


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="api_tokens_of_inactive_users")
def revoke_tokens_of_inactive_user(
    sender, instance, created: bool, update_fields=None, **kwargs
) -> None:
    # A new user has no tokens, and a save that leaves is_active alone (a sign-in writing
    # last_login) has none to revoke.
    if created or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    tokens_revoke_all(user=instance, reason="owner deactivated")
