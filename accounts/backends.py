"""Password sign-in, off for everyone but the break-glass users once TMS_LOCAL_SIGNIN is false;
a user's permissions read in one statement."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest

from accounts.services.local import LOCAL_SIGNIN_OFF, local_signin_allowed


@cache
def _permissions_sql() -> str:
    """The permissions a user holds, their own and their groups', as (app label, codename):
    Django's two reads in one, written once from the models' tables."""
    q = connection.ops.quote_name
    user_perms = get_user_model().user_permissions.through._meta
    user_groups = get_user_model().groups.through._meta
    group_perms = Group.permissions.through._meta

    def column(meta, name: str) -> str:
        return q(meta.get_field(name).column)

    return (
        f"SELECT ct.{q('app_label')}, p.{q('codename')} "  # noqa: S608
        f"FROM {q(Permission._meta.db_table)} p "
        f"JOIN {q(ContentType._meta.db_table)} ct ON ct.{q('id')} = p.{q('content_type_id')} "
        f"WHERE p.{q('id')} IN ("
        f"SELECT {column(user_perms, 'permission')} FROM {q(user_perms.db_table)} "
        f"WHERE {column(user_perms, 'user')} = %s "
        f"UNION SELECT gp.{column(group_perms, 'permission')} "
        f"FROM {q(group_perms.db_table)} gp JOIN {q(user_groups.db_table)} ug "
        f"ON ug.{column(user_groups, 'group')} = gp.{column(group_perms, 'group')} "
        f"WHERE ug.{column(user_groups, 'user')} = %s)"
    )


class OneReadPermissions(ModelBackend):
    """Django's permissions, kept on the user object for the request as Django keeps them
    (changes are seen at the next request), read in one statement instead of two: the API
    asks for a permission on almost every request. Superusers' (all permissions) are read as
    Django reads them."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                return super().get_all_permissions(user_obj)
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app}.{codename}" for app, codename in cursor}
        return user_obj._perm_cache


class LocalPasswordBackend(OneReadPermissions):
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
