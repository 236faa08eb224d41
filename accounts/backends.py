"""Password sign-in, off for everyone but the break-glass users once TMS_LOCAL_SIGNIN is false."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.services.local import LOCAL_SIGNIN_OFF, local_signin_allowed


class LocalPasswordBackend(ModelBackend):
    """Django's username-and-password backend, refusing a username that may not sign in with
    a password (accounts.services.local) before looking the user up.

    The refusal is a PermissionDenied, so that no later backend tries the same password, and
    Django signals it as a failed sign-in: django-axes counts it towards the lock-out and the
    audit trail records it (auth.signin_refused, bounded like failed sign-ins). It marks the
    request, for the sign-in page to say why."""

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None or local_signin_allowed(str(username)):
            return super().authenticate(request, username, password, **kwargs)
        # Hash the password as a check would: how long a refusal takes tells nobody whether
        # a username is a break-glass user's.
        get_user_model()().set_password(password)
        if request is not None:
            request.signin_refused = LOCAL_SIGNIN_OFF
        raise PermissionDenied

    def get_user(self, user_id):
        """The user of a session signed in by password, while they may still sign in so: once
        TMS_LOCAL_SIGNIN is turned off, everyone else's password sessions end at their next
        request, not at their expiry."""
        user = super().get_user(user_id)
        if user is None or not local_signin_allowed(user.get_username()):
            return None
        return user
