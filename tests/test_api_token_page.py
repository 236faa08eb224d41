"""The API tokens page: a user creates, lists and revokes their own tokens; a new token is
shown once, in the answer to the POST that made it, and nowhere after."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from api.tokens import token_create, token_revoke
from audit.models import AuditEntry
from tests.helpers import database_text, make_user, row_counts

PAGE = "/accounts/api-tokens/"
SECRET = re.compile(r"tms_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def create(client, **fields):
    return client.post(PAGE, {"name": "deploy script", "expires_days": "90", **fields})


def revoke_url(token: ApiToken) -> str:
    return reverse("api_token_revoke", args=[token.pk])


def test_the_page_is_for_signed_in_users_only(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("group", ["Operators", "Auditors", None])
def test_any_user_creates_a_token_and_sees_it_once(client, db, group, caplog):
    caplog.set_level(logging.DEBUG)
    user = make_user("someone", group, is_staff=group == "Auditors")
    client.force_login(user)
    response = create(client, read_only="on")
    assert response.status_code == 200
    secret = SECRET.search(response.content.decode())[0]
    assert "Copy it now: it is shown only once." in response.content.decode()
    token = ApiToken.objects.get(user=user)
    assert secret.startswith(f"tms_{token.prefix}_")
    assert (token.name, token.read_only) == ("deploy script", True)
    assert token.expires_at - timezone.now() > dt.timedelta(days=89)
    entry = AuditEntry.objects.get(event=AuditEntry.Event.API_TOKEN_CREATED)
    assert (entry.actor, entry.ip_address) == (user, "127.0.0.1")

    later = client.get(PAGE)
    assert f"tms_{token.prefix}_…" in later.content.decode()
    assert secret not in later.content.decode()
    assert "shown only once" not in later.content.decode()
    assert secret not in database_text()
    assert secret not in "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)


def test_the_answer_showing_a_token_is_never_cached(as_operator):
    response = create(as_operator)
    assert "no-store" in response["Cache-Control"]


def test_a_crash_after_creating_shows_no_token_in_the_error_report(
    as_operator, settings, monkeypatch
):
    """Django's error page and error mails show a failing view's locals, but not the new one."""
    settings.DEBUG = True
    as_operator.raise_request_exception = False

    def broken_page(*args, **kwargs):
        raise RuntimeError("the page failed after the token was made")

    monkeypatch.setattr("api.pages._page", broken_page)
    response = create(as_operator)
    assert response.status_code == 500
    token = ApiToken.objects.get()
    report = response.content.decode()
    assert f"tms_{token.prefix}_" not in report
    assert "the page failed after the token was made" in report


def test_the_list_shows_each_token_newest_first_with_its_state(as_operator, operator):
    now = timezone.now()
    old = token_create(user=operator, name="old", expires_days=7).token
    ApiToken.objects.filter(pk=old.pk).update(
        created_at=now - dt.timedelta(days=10), expires_at=now - dt.timedelta(days=3)
    )
    gone = token_create(user=operator, name="gone", read_only=True).token
    ApiToken.objects.filter(pk=gone.pk).update(created_at=now - dt.timedelta(days=1))
    token_revoke(token=gone, actor=operator)
    used = token_create(user=operator, name="used").token
    ApiToken.objects.filter(pk=used.pk).update(last_used_at=now)
    token_create(user=make_user("op2", "Operators"), name="not mine")

    html = as_operator.get(PAGE).content.decode()
    rows = re.findall(r'<tr data-token="([0-9a-f]{8})" data-state="(\w+)"', html)
    assert rows == [(used.prefix, "active"), (gone.prefix, "revoked"), (old.prefix, "expired")]
    assert "not mine" not in html
    assert html.count(">Revoke</button>") == 1
    assert "Read-only" in html and "never used" in html
    assert '<strong class="error-text">Revoked</strong>' in html
    assert '<strong class="error-text">Expired</strong>' in html


def test_a_token_that_never_expires_says_never(as_operator, operator, settings):
    settings.TMS_API_TOKEN_NEVER_EXPIRES = True
    response = create(as_operator, expires_days="0")
    assert response.status_code == 200
    assert ApiToken.objects.get().expires_at is None
    assert "<td>never</td>" in as_operator.get(PAGE).content.decode()


def lifetimes(response) -> list[str]:
    field = response.context["form"]["expires_days"]
    return [str(value) for value, _ in field.field.choices]


def test_the_lifetimes_follow_the_settings(as_operator, settings):
    response = as_operator.get(PAGE)
    assert lifetimes(response) == ["7", "30", "90", "365"]
    assert re.search(r'<option value="90" selected>', response.content.decode())

    settings.TMS_API_TOKEN_MAX_DAYS = 60
    settings.TMS_API_TOKEN_DAYS = 14
    settings.TMS_API_TOKEN_NEVER_EXPIRES = True
    response = as_operator.get(PAGE)
    assert lifetimes(response) == ["7", "14", "30", "0"]
    assert re.search(r'<option value="14" selected>', response.content.decode())
    assert '<option value="0">Never</option>' in response.content.decode()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": ""}, "name", "Give the token a name."),
        ({"name": "   "}, "name", "Give the token a name."),
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"expires_days": "0"}, "expires_days", "Select a valid choice."),
        ({"expires_days": "366"}, "expires_days", "Select a valid choice."),
        ({"expires_days": "ninety"}, "expires_days", "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_by_field_and_writes_nothing(as_operator, fields, field, message):
    before = row_counts()
    response = create(as_operator, **fields)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not SECRET.search(response.content.decode())
    assert row_counts() == before


def test_the_service_s_refusal_lands_on_its_field(as_operator, settings):
    """A lifetime the form offered can be refused by the time it is posted: the settings
    changed in between. token_create's error is then shown on the lifetime."""
    settings.TMS_API_TOKEN_MAX_DAYS = 30
    settings.TMS_API_TOKEN_DAYS = 90
    before = row_counts()
    response = create(as_operator, expires_days="90")
    assert response.status_code == 400
    assert response.context["form"].errors["expires_days"] == ["A token expires in 1 to 30 days."]
    assert row_counts() == before


def test_revoking_an_own_token(as_operator, operator):
    token = token_create(user=operator, name="ci").token
    response = as_operator.post(revoke_url(token), follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert f"Token “ci” ({token.prefix}) revoked." in response.content.decode()
    token.refresh_from_db()
    assert token.state() == "revoked"
    entry = AuditEntry.objects.get(event=AuditEntry.Event.API_TOKEN_REVOKED)
    assert (entry.actor, entry.ip_address) == (operator, "127.0.0.1")

    again = as_operator.post(revoke_url(token), follow=True)
    assert "was already revoked" in again.content.decode()
    assert AuditEntry.objects.filter(event=AuditEntry.Event.API_TOKEN_REVOKED).count() == 1


def test_another_user_s_token_is_not_found(client, operator):
    other = token_create(user=make_user("op2", "Operators"), name="theirs").token
    superuser = make_user("root", is_staff=True, is_superuser=True)
    for user in (operator, superuser):
        client.force_login(user)
        assert client.post(revoke_url(other)).status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def test_revoking_takes_a_post(as_operator, operator):
    token = token_create(user=operator, name="ci").token
    assert as_operator.get(revoke_url(token)).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None
