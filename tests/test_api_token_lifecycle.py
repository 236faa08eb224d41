"""What becomes of a user's API tokens when the user is deactivated (revoked at once, and they
stay so) or changes their password (they keep working: separate credentials, revoked on the
tokens page or in the admin)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from api.models import ApiToken
from api.tokens import token_create, token_revoke
from audit.models import AuditEntry
from tests.admin_helpers import make_superuser
from tests.helpers import THREADS, make_user, run_concurrently

CLUSTERS = "/api/v1/clusters"
PASSWORD = "a-Long-and-Unusual-passphrase-42"


def answers(secret: str) -> int:
    """The API's answer to a script sending this token (a client of its own, signed in as no
    one)."""
    return Client().get(CLUSTERS, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code


@pytest.fixture
def as_superuser(client, db):
    superuser = make_superuser()
    client.force_login(superuser)
    return client


def change_form(user: User, **changes) -> dict:
    """The admin's change form of `user`, as a browser posts it, with `changes`."""
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "groups": [str(g.pk) for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_deactivating_a_user_in_the_admin_revokes_their_tokens_for_good(as_superuser, operator):
    live = token_create(user=operator, name="deploy")
    read_only = token_create(user=operator, name="report", read_only=True)
    earlier = token_create(user=operator, name="old")
    token_revoke(token=earlier.token, actor=operator)
    others = token_create(user=make_user("op2", "Operators"), name="theirs")

    url = f"/admin/auth/user/{operator.pk}/change/"
    response = as_superuser.post(url, change_form(operator, is_active=None))
    assert response.status_code == 302, response.content.decode()[:2000]
    operator.refresh_from_db()
    assert not operator.is_active

    for new in (live, read_only):
        assert answers(new.secret) == 401
        new.token.refresh_from_db()
        assert new.token.state() == "revoked"
    revoked = AuditEntry.objects.filter(event="api_token.revoked", details__reason__isnull=False)
    assert sorted((e.details["token"], e.details["reason"]) for e in revoked) == sorted(
        [(live.token.prefix, "owner deactivated"), (read_only.token.prefix, "owner deactivated")]
    )
    assert answers(others.secret) == 200

    # Active again, the account has no live token: its scripts need new ones, made on purpose.
    response = as_superuser.post(url, change_form(operator))
    assert response.status_code == 302
    assert answers(live.secret) == 401
    assert not ApiToken.objects.usable().filter(user=operator).exists()


def test_a_deactivation_that_saves_nothing_else_still_stops_the_tokens_at_once(operator):
    new = token_create(user=operator, name="deploy")
    # An update sends no signal: the check of every request refuses the token all the same.
    User.objects.filter(pk=operator.pk).update(is_active=False)
    assert answers(new.secret) == 401
    User.objects.filter(pk=operator.pk).update(is_active=True)
    assert answers(new.secret) == 200


def test_a_sign_in_of_an_active_user_revokes_nothing(client, operator):
    new = token_create(user=operator, name="deploy")
    operator.set_password(PASSWORD)
    operator.save()
    signed_in = client.post("/accounts/login/", {"username": "op1", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert answers(new.secret) == 200
    assert not AuditEntry.objects.filter(event="api_token.revoked").exists()


def test_a_password_change_leaves_the_tokens_working(as_superuser, operator):
    new = token_create(user=operator, name="deploy")
    response = as_superuser.post(
        f"/admin/auth/user/{operator.pk}/password/",
        {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    operator.refresh_from_db()
    assert operator.check_password(PASSWORD)
    assert answers(new.secret) == 200
    assert new.token.state() == "active"
    assert not AuditEntry.objects.filter(event="api_token.revoked").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_token_made_while_its_owner_is_deactivated_is_refused_or_revoked(operator):
    def work(n: int):
        if n == 0:
            user = User.objects.get(pk=operator.pk)
            user.is_active = False
            user.save()
            return None
        return token_create(user=operator, name=f"script {n}")

    results, errors = run_concurrently(work)
    assert len(results) + len(errors) == THREADS
    assert not ApiToken.objects.usable().filter(user=operator).exists()
    made = [r for r in results if r is not None]
    assert ApiToken.objects.filter(user=operator).count() == len(made)
