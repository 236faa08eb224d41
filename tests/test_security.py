"""Hardening: no cache keeps an API answer, a Permissions-Policy on every page, sessions that end
when idle and after a fixed lifetime, no password reset, and a schema anyone may read."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from api.tokens import token_create
from jobs.models import Cluster, Job
from tests.fresh_settings import start
from tests.helpers import make_user
from tmsdash.security import LAST_ACTIVITY, PERMISSIONS_POLICY

IDLE = 30 * 60
LIFETIME = 12 * 3600


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def secret(operator):
    return token_create(user=operator, name="pipeline").secret


def api_answers(client, secret, job) -> dict[str, object]:
    """One answer of each kind the API gives: data, the schema and docs, and each error."""
    read_only = token_create(user=job.user, name="monitor", read_only=True).secret
    post = {"content_type": "application/json"}
    return {
        "list": client.get("/api/v1/clusters", **bearer(secret)),
        "job": client.get(f"/api/v1/jobs/{job.pk}", **bearer(secret)),
        "schema": client.get("/api/v1/schema"),
        "docs": client.get("/api/v1/docs"),
        "400 malformed JSON": client.post("/api/v1/set-actions", "{", **post, **bearer(secret)),
        "400 NUL": client.get("/api/v1/jobs?q=%00", **bearer(secret)),
        "401": client.get("/api/v1/jobs"),
        "403": client.post("/api/v1/set-actions", "{}", **post, **bearer(read_only)),
        "404 job": client.get("/api/v1/jobs/999999", **bearer(secret)),
        "404 path": client.get("/api/v1/nothing-here", **bearer(secret)),
        "405": client.delete("/api/v1/clusters", **bearer(secret)),
    }


def test_every_api_answer_and_error_is_no_store(client, operator, cluster, secret):
    job = baker.make(Job, user=operator, cluster=cluster, action=1, batch_id=None)
    answers = api_answers(client, secret, job)
    statuses = {kind: answer.status_code for kind, answer in answers.items()}
    assert statuses == {
        "list": 200,
        "job": 200,
        "schema": 200,
        "docs": 200,
        "400 malformed JSON": 400,
        "400 NUL": 400,
        "401": 401,
        "403": 403,
        "404 job": 404,
        "404 path": 404,
        "405": 405,
    }
    for kind, answer in answers.items():
        assert answer["Cache-Control"] == "no-store", kind


def test_a_throttled_api_answer_is_no_store(client, settings, secret):
    settings.TMS_API_READS_PER_MINUTE = 1
    assert client.get("/api/v1/clusters", **bearer(secret)).status_code == 200
    refused = client.get("/api/v1/clusters", **bearer(secret))
    assert refused.status_code == 429
    assert refused["Cache-Control"] == "no-store"


def test_pages_keep_their_own_caching(client, operator):
    client.force_login(operator)
    caching = client.get(reverse("job_list"))["Cache-Control"]
    assert "private" in caching and caching != "no-store"


def test_every_page_and_error_page_has_the_permissions_policy(client, operator):
    anonymous = [
        client.get(reverse("login")),
        client.get(reverse("admin:login")),
        client.get("/nothing-here"),
        client.get("/jobs/?q=%00"),
        Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x"}),
    ]
    client.force_login(operator)
    signed_in = [client.get(reverse("job_list")), client.get(reverse("set_action"))]
    statuses = [answer.status_code for answer in anonymous + signed_in]
    assert statuses == [200, 200, 404, 400, 403, 200, 200]
    for answer in anonymous + signed_in:
        assert answer["Permissions-Policy"] == PERMISSIONS_POLICY


def test_the_permissions_policy_refuses_the_devices_and_keeps_the_clipboard():
    features = dict(item.split("=") for item in PERMISSIONS_POLICY.split(", "))
    for denied in ("camera", "microphone", "geolocation", "payment", "usb", "fullscreen"):
        assert features[denied] == "()"
    # The Copy buttons write to the clipboard.
    assert features["clipboard-write"] == "(self)"


# --- Sessions -------------------------------------------------------------------------------


def signed_in(client, user) -> Client:
    """`client` signed in as `user` and past its first request."""
    client.force_login(user)
    assert client.get(reverse("job_list")).status_code == 200
    return client


def set_last_activity(client, seconds_ago: int) -> None:
    """What the session would hold had its user's last request been `seconds_ago`."""
    session = client.session
    session[LAST_ACTIVITY] = int(time.time()) - seconds_ago
    session.save()


def session_row(client) -> Session:
    return Session.objects.get(session_key=client.cookies["sessionid"].value)


def test_the_defaults_are_half_an_hour_idle_and_twelve_hours_in_all():
    result = start("settings.TMS_SESSION_IDLE_TIMEOUT, settings.SESSION_COOKIE_AGE", SECRET_KEY="x")
    assert result.stdout.split() == [str(IDLE), str(LIFETIME)], result.stderr


def test_an_idle_timeout_longer_than_the_lifetime_is_refused_at_start():
    result = start(SECRET_KEY="x", TMS_SESSION_LIFETIME="3600", TMS_SESSION_IDLE_TIMEOUT="7200")
    assert result.returncode != 0
    assert "TMS_SESSION_IDLE_TIMEOUT is malformed" in result.stderr
    assert "from 1 to 3600 (TMS_SESSION_LIFETIME)" in result.stderr


def test_signing_in_fixes_the_end_of_the_session_a_lifetime_away(client, operator):
    operator.set_password("correct horse battery staple")
    operator.save()
    before = timezone.now()
    response = client.post(
        reverse("login"), {"username": "op1", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    ends = session_row(client).expire_date
    assert before + datetime.timedelta(seconds=LIFETIME - 5) <= ends
    assert ends <= timezone.now() + datetime.timedelta(seconds=LIFETIME)
    assert LIFETIME - 5 <= int(response.cookies["sessionid"]["max-age"]) <= LIFETIME


def test_a_request_within_the_idle_timeout_keeps_the_session_and_counts_as_activity(
    client, operator
):
    signed_in(client, operator)
    set_last_activity(client, IDLE - 5)
    assert client.get(reverse("job_list")).status_code == 200
    assert int(time.time()) - client.session[LAST_ACTIVITY] <= 1


def test_activity_is_recorded_at_most_once_a_minute(client, operator):
    signed_in(client, operator)
    set_last_activity(client, 59)
    stored = client.session[LAST_ACTIVITY]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("job_list")).status_code == 200
    assert client.session[LAST_ACTIVITY] == stored
    assert not [
        q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "session" in q["sql"]
    ]


def test_a_session_from_before_the_timeouts_starts_its_lifetime_at_its_next_request(
    client, operator
):
    client.force_login(operator)
    session = client.session
    session.set_expiry(None)
    del session[LAST_ACTIVITY]
    session.save()
    assert client.get(reverse("job_list")).status_code == 200
    assert int(time.time()) - client.session[LAST_ACTIVITY] <= 1
    ends = session_row(client).expire_date
    assert timezone.now() + datetime.timedelta(seconds=LIFETIME - 5) <= ends


def test_the_first_request_after_the_idle_timeout_is_signed_out_and_told_why(client, operator):
    signed_in(client, operator)
    set_last_activity(client, IDLE + 1)
    response = client.get(reverse("job_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"]).content.decode()
    assert "You were signed out after 30 minutes without activity." in page
    # Signed out for good: the next request is not signed in either.
    assert client.get(reverse("job_list")).status_code == 302


def test_a_live_regions_refresh_is_not_activity_and_is_told_it_was_signed_out(
    client, operator, cluster
):
    job = baker.make(Job, user=operator, cluster=cluster, action=1, batch_id=None)
    refresh = reverse("job_detail", args=[job.pk]) + "?part=state"
    signed_in(client, operator)
    set_last_activity(client, IDLE - 60)
    stored = client.session[LAST_ACTIVITY]
    assert client.get(refresh, HTTP_HX_REQUEST="true").status_code == 200
    assert client.session[LAST_ACTIVITY] == stored
    set_last_activity(client, IDLE + 1)
    refused = client.get(refresh, HTTP_HX_REQUEST="true")
    assert (refused.status_code, refused.content) == (401, b"You were signed out.")


def test_activity_does_not_move_the_end_of_the_lifetime(client, operator):
    signed_in(client, operator)
    ends = session_row(client).expire_date
    for _ in range(2):
        set_last_activity(client, 60)
        assert client.get(reverse("job_list")).status_code == 200
        assert int(time.time()) - client.session[LAST_ACTIVITY] <= 1
        assert session_row(client).expire_date == ends


def test_a_session_past_its_lifetime_is_signed_out_however_active(client, operator):
    signed_in(client, operator)
    set_last_activity(client, 0)
    # The lifetime passed while the user kept working.
    Session.objects.filter(pk=session_row(client).pk).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = client.get(reverse("job_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_new_sign_in_starts_a_new_lifetime(client, operator):
    signed_in(client, operator)
    Session.objects.filter(pk=session_row(client).pk).update(
        expire_date=timezone.now() + datetime.timedelta(seconds=60)
    )
    client.post(reverse("logout"))
    signed_in(client, operator)
    assert session_row(client).expire_date > timezone.now() + datetime.timedelta(hours=11)


# --- Accounts -------------------------------------------------------------------------------

RESET_PAGES = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


def test_there_is_no_password_reset(client, operator):
    operator.email = "op1@example.net"
    operator.save()
    for url in RESET_PAGES:
        assert client.get(url).status_code == 404, url
    assert client.post(RESET_PAGES[0], {"email": "op1@example.net"}).status_code == 404
    assert mail.outbox == []
    client.force_login(operator)
    for url in RESET_PAGES:
        assert client.get(url).status_code == 404, url


def test_a_signed_in_user_changes_their_own_password_with_the_current_one(client, operator):
    operator.set_password("correct horse battery staple")
    operator.save()
    url = reverse("password_change")
    assert client.get(url).status_code == 302
    client.force_login(operator)
    assert client.get(url).status_code == 200
    wrong = {
        "old_password": "wrong",
        "new_password1": "a new long passphrase 42",
        "new_password2": "a new long passphrase 42",
    }
    assert client.post(url, wrong).status_code == 200
    right = {**wrong, "old_password": "correct horse battery staple"}
    assert client.post(url, right)["Location"] == reverse("password_change_done")
    operator.refresh_from_db()
    assert operator.check_password("a new long passphrase 42")


# --- The schema -----------------------------------------------------------------------------


def test_the_schema_and_its_docs_are_public_and_describe_no_installation(client, db):
    user = make_user("someone-zq7", "Operators")
    cluster = baker.make(Cluster, name="cluster-zq7", base_url="http://tms-zq7.example:9/")
    baker.make(Job, user=user, cluster=cluster, action=1, batch_id=None)
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/jobs" in json.loads(schema.content)["paths"]
    assert client.get("/api/v1/docs").status_code == 200
    assert "zq7" not in schema.content.decode()
