"""A user's permissions, read in one statement (accounts.backends.OneReadPermissions), are the
ones Django's ModelBackend finds, kept for the user object as Django keeps them."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.backends import LocalPasswordBackend
from accounts.provider_backend import ProviderBackend

pytestmark = pytest.mark.django_db


def permission(codename: str) -> Permission:
    return Permission.objects.get(codename=codename, content_type__app_label="jobs")


def fresh(user: User) -> User:
    """The user as a new request loads them: nothing cached."""
    return User.objects.get(pk=user.pk)


@pytest.fixture
def people() -> dict[str, User]:
    auditors = Group.objects.create(name="Readers")
    auditors.permissions.add(permission("view_all_jobs"), permission("run_set_action"))
    own = User.objects.create(username="own")
    own.user_permissions.add(permission("override_freeze"))
    grouped = User.objects.create(username="grouped")
    grouped.groups.add(auditors)
    both = User.objects.create(username="both")
    both.groups.add(auditors)
    both.user_permissions.add(permission("run_set_action"), permission("override_freeze"))
    inactive = User.objects.create(username="inactive", is_active=False)
    inactive.groups.add(auditors)
    return {
        "own": own,
        "grouped": grouped,
        "both": both,
        "none": User.objects.create(username="none"),
        "inactive": inactive,
        "superuser": User.objects.create(username="root", is_superuser=True),
    }


@pytest.mark.parametrize("backend", [LocalPasswordBackend, ProviderBackend])
def test_the_permissions_are_djangos_own_and_groups_included(people, backend):
    for name, user in people.items():
        expected = ModelBackend().get_all_permissions(fresh(user))
        assert backend().get_all_permissions(fresh(user)) == expected, name
    assert "jobs.view_all_jobs" in LocalPasswordBackend().get_all_permissions(people["grouped"])


def test_one_statement_a_request_and_none_for_the_next_question(people):
    user = fresh(people["both"])
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("jobs.view_all_jobs")
        assert user.has_perm("jobs.override_freeze")
        assert not user.has_perm("jobs.delete_job")
    assert len(queries) == 1


def test_a_permission_given_or_taken_is_seen_at_the_next_request(people):
    user = people["none"]
    assert not fresh(user).has_perm("jobs.run_set_action")
    user.user_permissions.add(permission("run_set_action"))
    assert fresh(user).has_perm("jobs.run_set_action")
    user.groups.add(Group.objects.get(name="Readers"))
    assert fresh(user).has_perm("jobs.view_all_jobs")
    Group.objects.get(name="Readers").permissions.remove(permission("view_all_jobs"))
    assert not fresh(user).has_perm("jobs.view_all_jobs")
