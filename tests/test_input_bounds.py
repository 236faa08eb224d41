"""Numbers, JSON, idempotency keys and date drill-downs from outside: each one that was a 500
is a clear refusal now, and writes nothing (lib.numbers, lib.boundedjson, api.parsers)."""

from __future__ import annotations

import argparse
import json
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.messages import get_messages
from model_bakery import baker

from api.tokens import token_create
from audit.models import AuditEntry
from audit.services import audit_bulk_append
from jobs.models import Job
from lib import argtypes, boundedjson
from lib.numbers import LARGEST, NotANumber, OutOfBounds, decimal_number, whole_number
from tests.admin_helpers import make_superuser
from tests.helpers import TOKEN, make_user, row_counts
from tests.servers import LoopbackServer, answer
from tests.test_upstream import call

SET_ACTIONS = "/api/v1/set-actions"
# Digits that str.isdigit() takes: int() refuses the first and reads the others as 3 and 4.
OTHER_DIGITS = ["²", "٣", "৪"]  # noqa: RUF001


@pytest.mark.parametrize(
    ("value", "bounds", "expected"),
    [("0", {}, 0), ("007", {}, 7), (str(LARGEST), {}, LARGEST), ("200", {"maximum": 200}, 200)],
)
def test_a_whole_number_is_ascii_digits_within_bounds(value, bounds, expected):
    assert whole_number(value, **bounds) == expected


@pytest.mark.parametrize(
    "value", [*OTHER_DIGITS, "-1", "+1", " 1", "1 ", "1_000", "1.0", "", "1\x00", "0x1", True]
)
def test_anything_but_ascii_digits_is_not_a_number(value):
    with pytest.raises(NotANumber, match="is not a whole number"):
        whole_number(value)


@pytest.mark.parametrize("value", [str(LARGEST + 1), "9" * 100_000, "0", "201"])
def test_digits_outside_the_bounds_are_out_of_bounds(value):
    with pytest.raises(OutOfBounds, match="from 1 to 200"):
        whole_number(value, minimum=1, maximum=200)


@pytest.mark.parametrize("raw", OTHER_DIGITS)
def test_command_arguments_refuse_other_digits(raw):
    for parse in (argtypes.positive_int, argtypes.port):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(raw)


# The API.


@pytest.fixture
def secret(operator) -> str:
    return token_create(user=operator, name="pipeline").secret


def api_post(client, secret, body, key: str | None = "key-1", **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        SET_ACTIONS,
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **headers,
    )


def written() -> dict[str, int]:
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


def submit(cluster, **overrides) -> dict:
    return {"action": "T-Enable", "cluster": cluster.name, "cids": ["C1"]} | {
        "cluster_token": TOKEN,
        **overrides,
    }


def assert_problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize("value", [*OTHER_DIGITS, "0", "201", "-1", "9" * 5000])
def test_a_page_size_other_than_1_to_200_in_ascii_digits_is_a_400(client, secret, value):
    response = client.get(
        "/api/v1/jobs", {"page_size": value}, HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    problem = assert_problem(response)
    assert problem["errors"] == {"page_size": ["A whole number from 1 to 200."]}


@pytest.mark.parametrize("action", OTHER_DIGITS)
def test_an_action_in_other_digits_is_an_unknown_action(client, cluster, secret, action):
    before = written()
    problem = assert_problem(api_post(client, secret, submit(cluster, action=action)))
    assert problem["errors"]["action"][0].startswith(f"Unknown action {action!r}")
    assert written() == before


def test_a_body_nested_100000_deep_is_a_400_problem(client, cluster, secret):
    before = written()
    body = '{"cids": ' + "[" * 100_000 + "]" * 100_000 + "}"
    problem = assert_problem(api_post(client, secret, body))
    assert problem["detail"] == "JSON parse error - JSON nested more than 32 levels deep"
    assert written() == before


def test_json_nested_33_deep_is_refused_and_32_is_read(client, cluster, secret):
    def nested(levels: int) -> str:
        """The body (a level) with `levels` of lists for cids, the innermost holding "C1"."""
        body = json.dumps(submit(cluster, cids="X"))
        return body.replace('"X"', "[" * levels + '"C1"' + "]" * levels)

    before = written()
    problem = assert_problem(api_post(client, secret, nested(32)))
    assert problem["detail"] == "JSON parse error - JSON nested more than 32 levels deep"
    problem = assert_problem(api_post(client, secret, nested(31)))
    assert problem["errors"] == {"cids": {"0": ["Not a valid string."]}}
    assert written() == before


def test_a_body_larger_than_the_upload_limit_is_a_400_problem(client, cluster, secret, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = written()
    problem = assert_problem(api_post(client, secret, submit(cluster, cids=["C1"] * 200)))
    assert problem["detail"] == "The request body is larger than 1000 bytes."
    assert api_post(client, secret, submit(cluster)).status_code == 201
    assert written() != before


def test_errors_of_list_items_are_plain_json_keyed_by_position(client, cluster, secret):
    before = written()
    problem = assert_problem(api_post(client, secret, submit(cluster, cids=["ok", "", 7])))
    assert problem["errors"] == {
        "cids": {"1": ["This field may not be blank."], "2": ["Not a valid string."]}
    }
    assert written() == before


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        ("", "Give 1 to 100 characters; this one has 0."),
        ("k" * 101, "Give 1 to 100 characters; this one has 101."),
        ("k\x00", "It contains control characters."),
        ("k\x1b[31m", "It contains control characters."),
    ],
)
def test_an_empty_long_or_control_character_idempotency_key_is_a_400(
    client, cluster, secret, key, detail
):
    before = written()
    problem = assert_problem(api_post(client, secret, submit(cluster), key=key))
    assert problem["errors"] == {"Idempotency-Key": [detail]}
    assert written() == before


def test_an_idempotency_key_of_100_characters_is_taken(client, cluster, secret):
    assert api_post(client, secret, submit(cluster), key="k" * 100).status_code == 201


# A cluster's answer.


@pytest.mark.parametrize("depth", [100_000, 500])
def test_a_cluster_answering_deep_json_fails_the_call_truthfully(depth):
    nested = "[" * depth + "]" * depth
    for status, body in ((200, '{"success": true, "results": ' + nested + "}"), (500, nested)):
        with LoopbackServer(answer(status, body)) as server:
            result = call(server.url)
        assert not result.success
        assert result.http_status == status
        expected = "Unrecognised response" if status == 200 else "API returned status 500"
        assert result.error_message.startswith(expected), result.error_message


def test_bounded_json_refuses_deep_json_as_a_value_error():
    assert boundedjson.loads("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        boundedjson.loads("[" * 33 + "]" * 33)
    with pytest.raises(ValueError, match="nested more than 2 levels deep"):
        boundedjson.loads('{"a": {"b": []}}', max_depth=2)
    assert boundedjson.loads('{"a": ["b"]}', max_depth=2) == {"a": ["b"]}


# The admin and the notifications form.


@pytest.fixture
def admin_client(client, db):
    client.force_login(make_superuser())
    return client


def test_an_http_status_filter_in_other_digits_is_no_500(admin_client):
    for value in OTHER_DIGITS:
        response = admin_client.get("/admin/jobs/job/", {"http_status": value})
        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    ("url", "query", "message"),
    [
        ("/admin/audit/auditentry/", "created_at__year=99999", "Not a year the list can show"),
        ("/admin/notifications/notice/", "created_at__year=99999", "Not a year"),
        ("/admin/jobs/job/", "created_at__year=9999", "Not a year the list can show (2 to 9998)"),
        ("/admin/jobs/job/", "created_at__year=²", "Not a year"),
        ("/admin/jobs/job/", "created_at__year=2026&created_at__month=13", "Not a month"),
        (
            "/admin/jobs/job/",
            "created_at__year=2026&created_at__month=2&created_at__day=31",
            "Not a day of that month: '31'",
        ),
    ],
)
def test_an_impossible_date_drill_down_shows_the_list_with_a_message(
    admin_client, operator, url, query, message
):
    audit_bulk_append([AuditEntry(event="job.submitted", actor=operator)])
    baker.make(Job, user=operator, action=1)
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code == 200
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(m.startswith(message) and "The list ignores it" in m for m in shown), shown
    # The list, without the impossible part of the date.
    bad = query.rsplit("&", 1)[-1].split("=")[0]
    assert bad not in response.context["cl"].get_filters_params()


def test_a_possible_date_drill_down_still_filters(admin_client, operator):
    baker.make(Job, user=operator, action=1)
    response = admin_client.get("/admin/jobs/job/?created_at__year=2001")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0
    assert not list(get_messages(response.wsgi_request))


@pytest.mark.parametrize("value", OTHER_DIGITS)
def test_a_cluster_chosen_in_other_digits_is_not_a_cluster(client, cluster, value):
    auditor = make_user("aud1", "Auditors", email="aud1@example.test")
    client.force_login(auditor)
    before = row_counts()
    response = client.post("/accounts/notifications/", {"all_jobs": "on", "clusters": value})
    assert response.status_code == 400
    assert re.search(f"“{value}” is not a cluster.", response.content.decode())
    assert row_counts() == before


@pytest.mark.parametrize("value", [*OTHER_DIGITS, "1e1", " 2", "+2", "inf", "nan", "0x1", "60.5"])
def test_a_wait_other_than_ascii_seconds_is_a_400(client, operator, secret, value):
    job = baker.make(Job, user=operator, action=1)
    response = client.get(
        f"/api/v1/jobs/{job.pk}", {"wait": value}, HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    problem = assert_problem(response)
    assert problem["errors"]["wait"] == [f"{value!r} is not a number from 0 to 60"]


@pytest.mark.parametrize(("value", "expected"), [("0.5", 0.5), ("60", 60.0), ("007.250", 7.25)])
def test_seconds_are_ascii_digits_with_an_optional_fraction(value, expected):
    assert decimal_number(value, maximum=60) == expected


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_sign_in_with_a_username_longer_than_any_is_a_failed_sign_in(client, db, url):
    response = client.post(url, {"username": "é" * 300, "password": "x"})
    assert response.status_code == 200
    assert AccessAttempt.objects.get().username == "é" * 150
