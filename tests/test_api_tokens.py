"""Personal API tokens: created and shown once, stored hashed, refused alike whatever is wrong
with them, revoked at once, audited."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from api.models import ApiToken
from api.tokens import token_check, token_create, token_revoke
from audit.models import AuditEntry
from tests.helpers import database_text, make_user, row_counts

CLUSTERS = "/api/v1/clusters"


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_token_is_shown_once_and_stored_only_hashed(operator):
    new = token_create(user=operator, name="release pipeline", actor=operator)
    assert new.secret.startswith(f"tms_{new.token.prefix}_") and len(new.secret) > 50
    assert new.secret not in database_text()
    assert token_check(new.secret) == new.token
    assert new.token.expires_at - timezone.now() > dt.timedelta(days=89)
    entry = AuditEntry.objects.get(event="api_token.created")
    assert (entry.actor, entry.details["token"]) == (operator, new.token.prefix)


def test_the_api_answers_a_good_token_and_refuses_everything_else_alike(client, operator):
    good = token_create(user=operator, name="ok").secret
    expired = token_create(user=operator, name="old")
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now())
    revoked = token_create(user=operator, name="gone")
    token_revoke(token=revoked.token, actor=operator)
    inactive = token_create(user=make_user("was", "Operators"), name="x")
    inactive.token.user.is_active = False
    inactive.token.user.save()

    assert client.get(CLUSTERS, **bearer(good)).status_code == 200
    refusals = [
        client.get(CLUSTERS),
        client.get(CLUSTERS, **bearer(expired.secret)),
        client.get(CLUSTERS, **bearer(revoked.secret)),
        client.get(CLUSTERS, **bearer(inactive.secret)),
        client.get(CLUSTERS, **bearer(good[:-1] + ("A" if good[-1] != "A" else "B"))),
        client.get(CLUSTERS, **bearer("tms_00000000_" + "x" * 43)),
        client.get(CLUSTERS, **bearer("nonsense")),
        client.get(CLUSTERS, HTTP_AUTHORIZATION=f"Token {good}"),
    ]
    assert {(r.status_code, r["Content-Type"], r.content) for r in refusals} == {
        (401, "application/problem+json", refusals[0].content)
    }
    assert all(r["WWW-Authenticate"] == 'Bearer realm="tmsdash"' for r in refusals)


def test_last_use_is_recorded_at_most_once_a_minute(client, operator):
    new = token_create(user=operator, name="monitor")
    client.get(CLUSTERS, **bearer(new.secret))
    first = ApiToken.objects.get(pk=new.token.pk).last_used_at
    assert first is not None
    client.get(CLUSTERS, **bearer(new.secret))
    assert ApiToken.objects.get(pk=new.token.pk).last_used_at == first


def test_lifetimes_are_bounded_and_never_needs_the_setting(operator, settings):
    before = row_counts()
    for days in (-1, 366, 0):
        with pytest.raises(ValidationError):
            token_create(user=operator, name="x", expires_days=days)
    with pytest.raises(ValidationError):
        token_create(user=operator, name=" ")
    assert row_counts() == before
    settings.TMS_API_TOKEN_NEVER_EXPIRES = True
    assert token_create(user=operator, name="forever", expires_days=0).token.expires_at is None


def test_only_the_owner_or_a_superuser_revokes_and_it_is_audited(operator):
    new = token_create(user=operator, name="x")
    with pytest.raises(PermissionDenied):
        token_revoke(token=new.token, actor=make_user("op2", "Operators"))
    assert token_revoke(token=new.token, actor=operator) is True
    assert token_revoke(token=new.token, actor=operator) is False
    assert AuditEntry.objects.filter(event="api_token.revoked").count() == 1
    assert token_check(new.secret) is None


def test_create_api_token_prints_the_token_once(operator):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token",
        "--user",
        operator.username,
        "--name",
        "ci",
        "--read-only",
        "--expires-days",
        "7",
        stdout=out,
        stderr=err,
    )
    secret = out.getvalue().strip()
    token = token_check(secret)
    assert token.read_only and token.user == operator
    assert token.prefix in err.getvalue() and secret not in err.getvalue()
    assert AuditEntry.objects.get(event="api_token.created").actor is None
    before = row_counts()
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_api_token", "--user", "nobody", "--name", "x")
    with pytest.raises(CommandError, match="expires in 1 to 365 days"):
        call_command(
            "create_api_token", "--user", operator.username, "--name", "x", "--expires-days", "400"
        )
    assert row_counts() == before
