"""API tokens kept in bounds: at most TMS_API_TOKENS_PER_USER live tokens per user, however
many creates run at once; the tokens page is paged."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

import api.tokens
from api.models import ApiToken
from api.pages import TOKENS_PER_PAGE
from api.tokens import token_create, token_revoke
from audit.models import AuditEntry
from tests.fresh_settings import start
from tests.helpers import THREADS, make_user, row_counts, run_concurrently, wait_until

PAGE = "/accounts/api-tokens/"
TOO_MANY = "op1 already has 3 live API tokens, the most one user may have"


@pytest.fixture
def limit(settings) -> int:
    settings.TMS_API_TOKENS_PER_USER = 3
    return 3


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def test_a_create_beyond_the_limit_is_refused_and_writes_nothing(operator, limit):
    for n in range(limit):
        token_create(user=operator, name=f"script {n}")
    before = row_counts()
    with pytest.raises(ValidationError) as refused:
        token_create(user=operator, name="one too many")
    assert refused.value.code == "too_many_tokens"
    assert refused.value.messages == [
        f"{TOO_MANY} (TMS_API_TOKENS_PER_USER): revoke one that is no longer used before "
        "creating another."
    ]
    assert row_counts() == before


def test_revoked_and_expired_tokens_leave_room_and_others_users_do_not_count(operator, limit):
    tokens = [token_create(user=operator, name=f"script {n}").token for n in range(limit)]
    token_create(user=make_user("op2", "Operators"), name="not op1's")
    token_revoke(token=tokens[0], actor=operator)
    ApiToken.objects.filter(pk=tokens[1].pk).update(expires_at=timezone.now())
    token_create(user=operator, name="in the revoked one's place")
    token_create(user=operator, name="in the expired one's place")
    with pytest.raises(ValidationError):
        token_create(user=operator, name="one too many")
    assert ApiToken.objects.usable().filter(user=operator).count() == limit


def test_the_command_refuses_beyond_the_limit_too(operator, limit):
    for n in range(limit):
        token_create(user=operator, name=f"script {n}")
    with pytest.raises(CommandError, match=TOO_MANY):
        call_command("create_api_token", user="op1", name="x", stdout=io.StringIO())
    assert ApiToken.objects.count() == limit


def test_the_page_says_how_many_are_live_and_refuses_beyond_the_limit(as_operator, limit):
    for n in range(limit - 1):
        as_operator.post(PAGE, {"name": f"script {n}", "expires_days": "90"})
    assert "You have 2 live tokens of the 3 one user may have." in as_operator.get(PAGE).text
    last = as_operator.post(PAGE, {"name": "last", "expires_days": "90"})
    assert "You have 3 live tokens of the 3 one user may have: revoke one" in last.text

    before = row_counts()
    refused = as_operator.post(PAGE, {"name": "one too many", "expires_days": "90"})
    assert refused.status_code == 400
    assert f"{TOO_MANY} (TMS_API_TOKENS_PER_USER)" in refused.text
    assert "Your new token" not in refused.text
    assert row_counts() == before


def test_the_page_is_paged_newest_first(as_operator, operator, settings):
    settings.TMS_API_TOKENS_PER_USER = TOKENS_PER_PAGE * 3
    now = timezone.now()
    count = TOKENS_PER_PAGE * 2 + 3
    for n in range(count):
        token = token_create(user=operator, name=f"script {n}").token
        # Some made in the same instant: the order still shows each once.
        ApiToken.objects.filter(pk=token.pk).update(created_at=now - dt.timedelta(minutes=n // 2))
    pages = [as_operator.get(PAGE, {"page": n}).text for n in (1, 2, 3)]
    shown = [re.findall(r'<tr data-token="([0-9a-f]{8})"', page) for page in pages]
    assert [len(rows) for rows in shown] == [TOKENS_PER_PAGE, TOKENS_PER_PAGE, 3]
    newest_first = ApiToken.objects.order_by("-created_at", "-pk")
    assert [prefix for rows in shown for prefix in rows] == [t.prefix for t in newest_first]
    assert "Page 2 of 3" in pages[1]
    # A page number that is not one shows a page, never an error.
    for number in ("0", "-1", "999999999999", "²", "x", "1" * 5000):
        assert as_operator.get(PAGE, {"page": number}).status_code == 200


def test_revoking_from_a_later_page_returns_to_it(as_operator, operator, settings):
    settings.TMS_API_TOKENS_PER_USER = TOKENS_PER_PAGE * 2
    tokens = [token_create(user=operator, name=f"s{n}").token for n in range(TOKENS_PER_PAGE + 1)]
    page = as_operator.get(PAGE, {"page": 2}).text
    assert f'action="/accounts/api-tokens/{tokens[0].pk}/revoke/?page=2"' in page
    response = as_operator.post(f"/accounts/api-tokens/{tokens[0].pk}/revoke/?page=2")
    assert response.headers["Location"] == f"{PAGE}?page=2"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_creates_at_once_never_pass_the_limit(operator, limit):
    results, errors = run_concurrently(
        lambda n: token_create(user=operator, name=f"script {n}").token.pk
    )
    assert len(results) == limit
    assert len(errors) == THREADS - limit
    assert all(getattr(error, "code", None) == "too_many_tokens" for error in errors), errors
    assert ApiToken.objects.filter(user=operator).count() == limit
    assert AuditEntry.objects.filter(event=AuditEntry.Event.API_TOKEN_CREATED).count() == limit


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_create_waits_for_the_first_to_commit(operator, limit, monkeypatch):
    """The first create is held inside its transaction, one token short of the limit, until
    the second is seen waiting for it; released, the first is the last one allowed."""
    for n in range(limit - 1):
        token_create(user=operator, name=f"script {n}")
    inside, release = threading.Event(), threading.Event()
    record = api.tokens.audit_record

    def held_audit_record(**kwargs):
        if kwargs["details"]["name"] == "first":
            inside.set()
            assert release.wait(timeout=60)
        return record(**kwargs)

    monkeypatch.setattr(api.tokens, "audit_record", held_audit_record)
    outcomes: dict[str, object] = {}
    second_sql: list[str] = []

    def create(name: str) -> None:
        def recorded(execute, sql, params, many, context):
            second_sql.append(sql)
            return execute(sql, params, many, context)

        try:
            if name == "second":
                with connection.execute_wrapper(recorded):
                    outcomes[name] = token_create(user=operator, name=name)
            else:
                outcomes[name] = token_create(user=operator, name=name)
        except ValidationError as exc:
            outcomes[name] = exc
        finally:
            connections.close_all()

    def second_waits() -> bool:
        if connection.vendor == "sqlite":
            # Every transaction begins by taking the file's write lock: it waits there.
            return any(sql.startswith("BEGIN") for sql in second_sql)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] > 0

    first = threading.Thread(target=create, args=("first",))
    first.start()
    wait_until(inside.is_set)
    second = threading.Thread(target=create, args=("second",))
    second.start()
    try:
        wait_until(lambda: "second" in outcomes or second_waits())
        # Had the second not waited, it would have counted one token short too, and made one.
        assert "second" not in outcomes, outcomes
    finally:
        release.set()
        first.join()
        second.join()

    assert isinstance(outcomes["first"], api.tokens.NewToken)
    assert isinstance(outcomes["second"], ValidationError)
    assert outcomes["second"].code == "too_many_tokens"
    assert ApiToken.objects.filter(user=operator).count() == limit


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TMS_API_TOKENS_PER_USER", "0"),
        ("TMS_API_TOKENS_PER_USER", "many"),
        ("TMS_API_TOKENS_KEEP_DAYS", "0"),
        ("TMS_API_TOKENS_KEEP_DAYS", "30d"),
    ],
)
def test_a_malformed_bound_stops_start_up_naming_it(name, value):
    result = start(SECRET_KEY="k" * 50, **{name: value})
    assert result.returncode != 0
    assert f"The environment variable {name} is malformed" in result.stderr


def test_the_bounds_have_their_defaults():
    result = start(
        "settings.TMS_API_TOKENS_PER_USER, settings.TMS_API_TOKENS_KEEP_DAYS", SECRET_KEY="k" * 50
    )
    assert result.stdout.strip() == "20 30", result.stderr
