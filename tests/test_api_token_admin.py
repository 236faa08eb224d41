"""API tokens in the admin: a superuser lists everyone's and revokes them; none is added,
changed or deleted there, and the digest is never shown."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse

from api.models import ApiToken
from api.tokens import token_create, token_revoke
from audit.models import AuditEntry
from tests.admin_helpers import make_auditor, make_superuser
from tests.helpers import make_user

CHANGELIST = reverse("admin:api_apitoken_changelist")


@pytest.fixture
def superuser(db):
    return make_superuser()


@pytest.fixture
def as_superuser(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def tokens(operator):
    other = make_user("op2", "Operators")
    return [
        token_create(user=operator, name="ci", read_only=True).token,
        token_create(user=other, name="cron").token,
    ]


def test_the_list_shows_every_user_s_tokens_without_their_digests(as_superuser, tokens):
    token_revoke(token=tokens[1], actor=tokens[1].user)
    response = as_superuser.get(CHANGELIST)
    html = response.content.decode()
    assert response.status_code == 200
    for token in tokens:
        assert token.prefix in html and token.digest not in html
    assert "op1" in html and "op2" in html
    assert ">revoked</td>" in html and ">active</td>" in html

    change = as_superuser.get(reverse("admin:api_apitoken_change", args=[tokens[0].pk]))
    assert change.status_code == 200
    assert tokens[0].digest not in change.content.decode()


def test_nothing_is_added_changed_or_deleted_here(as_superuser, tokens):
    token = tokens[0]
    assert as_superuser.get(reverse("admin:api_apitoken_add")).status_code == 403
    change_url = reverse("admin:api_apitoken_change", args=[token.pk])
    assert as_superuser.post(change_url, {"name": "renamed"}).status_code == 403
    delete = as_superuser.post(
        reverse("admin:api_apitoken_delete", args=[token.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    token.refresh_from_db()
    assert (token.name, token.read_only) == ("ci", True)
    assert ApiToken.objects.count() == 2


def revoke(client, tokens):
    return client.post(
        CHANGELIST,
        {"action": "revoke", helpers.ACTION_CHECKBOX_NAME: [t.pk for t in tokens]},
        follow=True,
    )


def test_a_superuser_revokes_selected_tokens(as_superuser, superuser, tokens):
    token_revoke(token=tokens[1], actor=tokens[1].user)
    response = revoke(as_superuser, tokens)
    assert "Revoked 1 token(s); 1 already were." in response.content.decode()
    assert {t.state() for t in ApiToken.objects.all()} == {"revoked"}
    entry = AuditEntry.objects.filter(event=AuditEntry.Event.API_TOKEN_REVOKED).latest("id")
    assert (entry.actor, entry.details["token"]) == (superuser, tokens[0].prefix)


def test_staff_without_superuser_cannot_revoke(client, tokens):
    auditor = make_auditor()
    auditor.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client.force_login(auditor)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert 'value="revoke"' not in page.content.decode()
    revoke(client, tokens)
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()
