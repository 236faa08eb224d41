"""Notifications in the admin: webhook endpoints added, changed and deleted with checked URLs,
audited, their secret write-only; the outbox of notices read-only with every attempt, and
delivered again on request."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster
from notifications import delivery
from notifications.admin import WebhookEndpointAdmin
from notifications.delivery import notice_deliver
from notifications.endpoints import endpoint_delete, endpoint_save
from notifications.models import Notice, NoticeAttempt, WebhookEndpoint
from notifications.resend import notices_resend
from notifications.tasks import deliver_notice
from notifications.webhooks import Outcome
from tests.admin_helpers import make_auditor, make_job, make_superuser
from tests.helpers import database_text, make_user, row_counts

SECRET = "whsec-9Lq2x-never-shown-never-stored-in-clear"
NEW_SECRET = "whsec-R4t8p-the-replacement-also-never-shown"
ENDPOINTS = reverse("admin:notifications_webhookendpoint_changelist")
ADD = reverse("admin:notifications_webhookendpoint_add")
NOTICES = reverse("admin:notifications_notice_changelist")
State = Notice.State

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


@pytest.fixture
def eu1(db):
    return baker.make(Cluster, name="eu1", base_url="http://127.0.0.1:9100")


@pytest.fixture
def us1(db):
    return baker.make(Cluster, name="us1", base_url="http://127.0.0.1:9101")


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(
        name="ops-hook", url="https://hooks.example.net/tms", secret=SECRET
    )


def form(**changes) -> dict:
    data = {
        "name": "ops-hook",
        "url": "https://hooks.example.net/tms?team=ops",
        "format": "generic",
        "secret": SECRET,
        "events": ["job.failed", "job.unknown"],
        "clusters": [],
        "is_active": "on",
    }
    return {**data, **changes}


def change_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])


def notice_url(notice: Notice) -> str:
    return reverse("admin:notifications_notice_change", args=[notice.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def entries(event: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event=event))


def make_notice(*, endpoint=None, user=None, **fields) -> Notice:
    event_id = uuid.uuid4()
    fields.setdefault("event", "job.failed")
    return Notice.objects.create(
        event_id=event_id,
        channel=Notice.Channel.WEBHOOK if endpoint else Notice.Channel.EMAIL,
        endpoint=endpoint,
        user=user,
        payload={"event": fields["event"], "event_id": str(event_id), "error": "HTTP 500"},
        **fields,
    )


# Adding an endpoint.


def test_superuser_adds_an_endpoint_with_its_clusters(admin_client, eu1, us1):
    response = admin_client.post(ADD, form(clusters=[us1.pk, eu1.pk]))

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.name, endpoint.url, endpoint.is_active) == (
        "ops-hook",
        "https://hooks.example.net/tms?team=ops",
        True,
    )
    assert endpoint.events == ["job.failed", "job.unknown"]
    assert set(endpoint.clusters.all()) == {eu1, us1}
    assert endpoint.secret == SECRET


def test_events_are_kept_in_one_order_whatever_order_they_were_ticked(admin_client):
    admin_client.post(ADD, form(events=["job.succeeded", "batch.ended", "job.failed"]))
    assert WebhookEndpoint.objects.get().events == ["job.failed", "batch.ended", "job.succeeded"]


def test_adding_is_audited_without_the_secret_which_is_stored_encrypted(
    admin_client, admin_user, eu1
):
    admin_client.post(ADD, form(clusters=[eu1.pk]), REMOTE_ADDR="10.1.2.3")

    endpoint = WebhookEndpoint.objects.get()
    [entry] = entries("webhook.created")
    assert (entry.actor, entry.ip_address) == (admin_user, "10.1.2.3")
    assert entry.details == {
        "endpoint_id": endpoint.pk,
        "endpoint": "ops-hook",
        "after": {
            "name": "ops-hook",
            "url": "https://hooks.example.net/…",
            "format": "generic",
            "events": ["job.failed", "job.unknown"],
            "is_active": True,
            "clusters": ["eu1"],
            "secret": "set",
            "routing_key": "none",
        },
    }
    assert SECRET not in database_text()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"url": "ftp://hooks.example.net/tms"}, "must start with http:// or https://"),
        ({"url": "hooks.example.net/tms"}, "must start with http:// or https://"),
        ({"url": "https://user:pw@hooks.example.net/tms"}, "may not hold a user name"),
        ({"url": "http://169.254.169.254/latest"}, "link-local or cloud metadata"),
        ({"url": "http://[fe80::1]/hook"}, "link-local or cloud metadata"),
        ({"url": "https://hooks.example.net/tms#x"}, "may not hold a fragment"),
        ({"url": "https://evil.example.com/tms"}, "The host evil.example.com is not allowed"),
        ({"url": ""}, "This field is required."),
        ({"events": ["job.failed", "job.nope"]}, "job.nope is not one of the available"),
        ({"events": []}, "Choose at least one event."),
        ({"secret": "short-secret"}, "at least 16 characters (it has 12)"),
        ({"secret": ""}, "This field is required."),
    ],
)
def test_an_endpoint_breaking_a_rule_is_not_written(admin_client, settings, changes, error):
    settings.TMS_ALLOWED_WEBHOOK_HOSTS = ["hooks.example.net", "169.254.169.254", "fe80::1"]
    before = row_counts()

    response = admin_client.post(ADD, form(**changes))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert row_counts() == before


def test_empty_allowed_hosts_accept_any_host(admin_client, settings):
    settings.TMS_ALLOWED_WEBHOOK_HOSTS = []
    response = admin_client.post(ADD, form(url="https://anywhere.example.org:9443/x"))
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().url == "https://anywhere.example.org:9443/x"


def test_a_refused_form_does_not_show_the_secret_back(admin_client):
    response = admin_client.post(ADD, form(url="ftp://hooks.example.net/tms"))
    html = response.content.decode()
    assert 'name="secret"' in html
    assert SECRET not in html


@pytest.mark.parametrize("debug", [True, False])
def test_an_error_while_saving_shows_no_secret(admin_client, settings, debug):
    # A real misconfiguration: a key that is not a Fernet key, so that the save fails inside
    # the encryption of the secret, with the secret in hand.
    settings.DEBUG = debug
    settings.TMS_TOKEN_KEY = "not-a-fernet-key"
    admin_client.raise_request_exception = False
    before = row_counts()

    response = admin_client.post(ADD, form())

    assert response.status_code == 500
    if debug:
        # The technical page, with the frames that held the secret: their values are hidden.
        assert "token_encrypt" in response.text
    assert SECRET not in response.text
    assert row_counts() == before


# Changing an endpoint.


def test_editing_with_a_blank_secret_keeps_the_secret(admin_client, endpoint, eu1):
    response = admin_client.post(
        change_url(endpoint), form(secret="", name="renamed", clusters=[eu1.pk])
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret == SECRET
    assert endpoint.name == "renamed"
    assert list(endpoint.clusters.all()) == [eu1]
    # Django's own history of the change does not claim the secret changed.
    assert LogEntry.objects.get().get_change_message() == "Changed Name, URL, Events and Clusters."


def test_editing_is_audited_with_what_changed_and_no_secret(admin_client, admin_user, endpoint):
    endpoint.clusters.add(baker.make(Cluster, name="ap1", base_url="http://127.0.0.1:9102"))
    response = admin_client.post(
        change_url(endpoint), form(secret="", is_active="", events=["job.failed"])
    )

    assert response.status_code == 302
    [entry] = entries("webhook.changed")
    assert entry.actor == admin_user
    assert entry.details == {
        "endpoint_id": endpoint.pk,
        "endpoint": "ops-hook",
        "before": {
            "url": "https://hooks.example.net/…",
            "events": ["job.failed", "job.unknown", "job.expired", "batch.ended"],
            "is_active": True,
            "clusters": ["ap1"],
        },
        "after": {
            "url": "changed, to https://hooks.example.net/…",
            "events": ["job.failed"],
            "is_active": False,
            "clusters": [],
        },
    }


def test_a_new_secret_is_audited_as_changed_never_by_value(admin_client, endpoint):
    response = admin_client.post(
        change_url(endpoint), form(url=endpoint.url, secret=NEW_SECRET, events=endpoint.events)
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret == NEW_SECRET
    assert LogEntry.objects.get().get_change_message() == "Changed Secret."
    [entry] = entries("webhook.changed")
    assert entry.details["before"] == {"secret": "set"}
    assert entry.details["after"] == {"secret": "changed"}
    text = database_text()
    assert SECRET not in text and NEW_SECRET not in text


def test_saving_with_nothing_changed_writes_no_entry(admin_client, endpoint):
    data = form(url=endpoint.url, secret="", events=endpoint.events)
    assert admin_client.post(change_url(endpoint), data).status_code == 302
    assert admin_client.post(change_url(endpoint), {**data, "secret": SECRET}).status_code == 302
    assert entries("webhook.changed") == []


def test_editing_to_a_refused_url_changes_nothing(admin_client, settings, endpoint):
    settings.TMS_ALLOWED_WEBHOOK_HOSTS = ["hooks.example.net"]
    before = WebhookEndpoint.objects.values("name", "url", "events", "is_active").get()

    response = admin_client.post(
        change_url(endpoint), form(name="x", url="https://evil.example.com/", secret=NEW_SECRET)
    )

    assert response.status_code == 200
    assert "The host evil.example.com is not allowed" in response.content.decode()
    assert NEW_SECRET not in response.content.decode()
    assert WebhookEndpoint.objects.values("name", "url", "events", "is_active").get() == before
    endpoint.refresh_from_db()
    assert endpoint.secret == SECRET
    assert entries("webhook.changed") == []


def test_the_secret_appears_on_no_admin_page(admin_client, endpoint):
    make_notice(endpoint=endpoint, state=State.FAILED)
    pages = [
        ENDPOINTS,
        ADD,
        change_url(endpoint),
        reverse("admin:notifications_webhookendpoint_history", args=[endpoint.pk]),
        NOTICES,
        reverse("admin:notifications_notice_change", args=[Notice.objects.get().pk]),
        reverse("admin:audit_auditentry_changelist"),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert SECRET not in response.content.decode(), page

    change = admin_client.get(change_url(endpoint)).content.decode()
    assert '<input type="password" name="secret"' in change
    assert "set (never shown)" in change
    assert "Leave blank to keep the current secret." in change


def test_an_unreadable_secret_is_shown_as_such_and_must_be_set_again(
    admin_client, settings, endpoint
):
    # The key the secret was encrypted with is gone: it reads back as None.
    settings.TMS_TOKEN_KEY = Fernet.generate_key().decode()
    endpoint.refresh_from_db()
    assert endpoint.secret is None

    for page in (ENDPOINTS, change_url(endpoint)):
        assert "cannot be read (the encryption key changed)" in admin_client.get(page).text

    data = form(url="https://hooks.example.net/tms", events=endpoint.events, secret="")
    refused = admin_client.post(change_url(endpoint), data)
    assert refused.status_code == 200
    assert "The current secret cannot be read" in refused.text
    assert entries("webhook.changed") == []

    assert (
        admin_client.post(change_url(endpoint), {**data, "secret": NEW_SECRET}).status_code == 302
    )
    endpoint.refresh_from_db()
    assert endpoint.secret == NEW_SECRET
    [entry] = entries("webhook.changed")
    # The URL, encrypted with the same key, had to be typed again too.
    assert (entry.details["before"], entry.details["after"]) == (
        {"url": "(cannot be read: the encryption key changed)", "secret": "unreadable"},
        {"url": "changed, to https://hooks.example.net/…", "secret": "changed"},
    )


def test_endpoint_save_refuses_an_unreadable_secret_and_writes_nothing(endpoint):
    endpoint.secret = None
    before = row_counts()
    with pytest.raises(Exception, match="cannot be read"):
        endpoint_save(endpoint=endpoint)
    assert row_counts() == before


def test_endpoint_save_sets_the_clusters_only_when_given(endpoint, eu1):
    endpoint_save(endpoint=endpoint, clusters=[eu1])
    endpoint.name = "renamed"
    endpoint_save(endpoint=endpoint)

    assert list(endpoint.clusters.all()) == [eu1]
    first, second = AuditEntry.objects.filter(event="webhook.changed").order_by("id")
    assert (first.details["before"], first.details["after"]) == (
        {"clusters": []},
        {"clusters": ["eu1"]},
    )
    assert second.details["after"] == {"name": "renamed"}


def test_the_list_counts_failed_and_pending_notices_with_links(admin_client, endpoint):
    for state in (State.FAILED, State.FAILED, State.PENDING, State.SENT):
        make_notice(endpoint=endpoint, state=state)
    WebhookEndpoint.objects.create(url="https://hooks.example.net/quiet", secret=SECRET)

    html = admin_client.get(ENDPOINTS).content.decode()

    failed = f"{NOTICES}?endpoint__id__exact={endpoint.pk}&amp;state__exact=FAILED"
    pending = f"{NOTICES}?endpoint__id__exact={endpoint.pk}&amp;state__exact=PENDING"
    assert f'<a href="{failed}">2</a>' in html
    assert f'<a href="{pending}">1</a>' in html
    assert "https://hooks.example.net/…" in html
    assert "/quiet" not in html
    assert "every cluster" in html
    listed = admin_client.get(failed.replace("&amp;", "&")).context["cl"].result_list
    assert {(n.endpoint_id, n.state) for n in listed} == {(endpoint.pk, State.FAILED)}
    assert len(listed) == 2


# Deleting an endpoint.


def test_an_endpoint_without_notices_is_deleted_and_audited(admin_client, admin_user, endpoint):
    response = admin_client.post(
        reverse("admin:notifications_webhookendpoint_delete", args=[endpoint.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    [entry] = entries("webhook.deleted")
    assert entry.actor == admin_user
    assert entry.details["before"] == {
        "name": "ops-hook",
        "url": "https://hooks.example.net/…",
        "format": "generic",
        "events": ["job.failed", "job.unknown", "job.expired", "batch.ended"],
        "is_active": True,
        "clusters": [],
        "secret": "set",
        "routing_key": "none",
    }


def test_an_endpoint_with_notices_is_not_deleted_and_the_admin_says_to_deactivate_it(
    admin_client, endpoint
):
    make_notice(endpoint=endpoint, state=State.SENT)
    url = reverse("admin:notifications_webhookendpoint_delete", args=[endpoint.pk])
    before = row_counts()

    for method, data in (("get", {}), ("post", {"post": "yes"})):
        response = getattr(admin_client, method)(url, data, follow=True)
        assert response.status_code == 200
        assert response.redirect_chain == [(change_url(endpoint), 302)]
        assert messages_of(response) == [
            "The webhook endpoint ops-hook has notices, which are history: nothing was "
            "deleted. Deactivate it instead (untick “Is active” and save)."
        ]
    assert row_counts() == before


def test_a_notice_written_just_before_the_delete_refuses_it_too(
    admin_client, endpoint, monkeypatch
):
    # A job ends between the delete page's check and the delete itself.
    checked = WebhookEndpointAdmin.get_deleted_objects

    def notice_meanwhile(self, objs, request):
        result = checked(self, objs, request)
        make_notice(endpoint=endpoint)
        return result

    monkeypatch.setattr(WebhookEndpointAdmin, "get_deleted_objects", notice_meanwhile)
    url = reverse("admin:notifications_webhookendpoint_delete", args=[endpoint.pk])
    before = row_counts()

    response = admin_client.post(url, {"post": "yes"}, follow=True)

    assert response.redirect_chain == [(change_url(endpoint), 302)]
    assert messages_of(response) == [
        "The webhook endpoint ops-hook has notices, which are history: nothing was "
        "deleted. Deactivate it instead (untick “Is active” and save)."
    ]
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert entries("webhook.deleted") == []
    # Nor does Django's log of deletions keep one (the notice is rolled back too, here only).
    assert row_counts() == before


def test_bulk_delete_of_endpoints_with_notices_deletes_none(admin_client, endpoint):
    other = WebhookEndpoint.objects.create(
        name="b", url="https://hooks.example.net/b", secret=SECRET
    )
    unused = WebhookEndpoint.objects.create(
        name="c", url="https://hooks.example.net/c", secret=SECRET
    )
    make_notice(endpoint=endpoint)
    make_notice(endpoint=other)
    data = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [endpoint.pk, other.pk, unused.pk]}

    response = admin_client.post(ENDPOINTS, {**data, "post": "yes", "index": 0}, follow=True)

    assert response.status_code == 200
    assert messages_of(response) == [
        "The webhook endpoints b, ops-hook have notices, which are history: nothing was "
        "deleted. Deactivate them instead (untick “Is active” and save)."
    ]
    assert WebhookEndpoint.objects.count() == 3
    assert entries("webhook.deleted") == []


def test_bulk_delete_of_endpoints_without_notices_asks_then_deletes_each_audited(
    admin_client, endpoint
):
    other = WebhookEndpoint.objects.create(
        name="b", url="https://hooks.example.net/b", secret=SECRET
    )
    data = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [endpoint.pk, other.pk], "index": 0}

    confirm = admin_client.post(ENDPOINTS, data)
    assert confirm.status_code == 200
    assert "Are you sure you want to delete the selected webhook endpoints?" in confirm.text
    assert SECRET not in confirm.text
    assert WebhookEndpoint.objects.count() == 2

    assert admin_client.post(ENDPOINTS, {**data, "post": "yes"}).status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert sorted(e.details["endpoint"] for e in entries("webhook.deleted")) == ["b", "ops-hook"]


def test_a_bulk_delete_refused_midway_deletes_none_and_logs_nothing(
    admin_client, endpoint, monkeypatch
):
    other = WebhookEndpoint.objects.create(
        name="b", url="https://hooks.example.net/b", secret=SECRET
    )
    checked = WebhookEndpointAdmin.get_deleted_objects

    def notice_meanwhile(self, objs, request):
        result = checked(self, objs, request)
        make_notice(endpoint=other)
        return result

    monkeypatch.setattr(WebhookEndpointAdmin, "get_deleted_objects", notice_meanwhile)
    before = row_counts()
    data = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [endpoint.pk, other.pk]}

    response = admin_client.post(ENDPOINTS, {**data, "post": "yes", "index": 0}, follow=True)

    assert response.status_code == 200
    assert "nothing was deleted" in messages_of(response)[0]
    # The notice written meanwhile is rolled back with the rest, in this test alone.
    assert row_counts() == before


def test_endpoint_delete_of_one_with_notices_raises_and_writes_nothing(endpoint):
    make_notice(endpoint=endpoint)
    before = row_counts()
    with pytest.raises(Exception, match="protected"):
        endpoint_delete(endpoint=endpoint)
    assert row_counts() == before


# The outbox.


@pytest.fixture
def failed_notice(endpoint):
    notice = make_notice(
        endpoint=endpoint,
        state=State.FAILED,
        attempts=2,
        created_at=dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 3, 5, 5, 6, 8, tzinfo=dt.UTC),
        last_error="HTTP 503 Service Unavailable from the receiver",
    )
    NoticeAttempt.objects.create(
        notice=notice,
        started_at=dt.datetime(2026, 3, 4, 5, 6, 9, tzinfo=dt.UTC),
        duration_ms=10004,
        ok=False,
        error="timed out after 10 s",
    )
    NoticeAttempt.objects.create(
        notice=notice,
        started_at=dt.datetime(2026, 3, 4, 5, 7, 11, tzinfo=dt.UTC),
        duration_ms=87,
        ok=False,
        http_status=503,
        error="HTTP 503 Service Unavailable from the receiver",
    )
    return notice


def test_the_notice_list_shows_each_notice_and_its_recipient(admin_client, operator, failed_notice):
    make_notice(user=operator, state=State.SENT, event="job.unknown")

    html = admin_client.get(NOTICES).content.decode()

    assert "A job failed" in html and "A job&#x27;s outcome is unknown" in html
    assert change_url(failed_notice.endpoint) in html
    assert "op1" in html
    assert "2026-03-04 05:06:07 UTC" in html
    assert "HTTP 503 Service Unavailable from the receiver" in html
    assert ">Failed<" in html and ">Sent<" in html


def test_the_notice_page_shows_every_attempt_and_the_payload(admin_client, failed_notice):
    response = admin_client.get(
        reverse("admin:notifications_notice_change", args=[failed_notice.pk])
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "2026-03-04 05:06:09 UTC" in html and "2026-03-04 05:07:11 UTC" in html
    assert "10004 ms" in html and "87 ms" in html
    assert "timed out after 10 s" in html
    cells = " ".join(html.split())
    assert '<td class="field-http"> <p>-</p> </td>' in cells
    assert '<td class="field-http"> <p>503</p> </td>' in cells
    assert cells.count('<td class="field-delivered"> <p><img') == 2
    assert 'alt="True"' not in cells
    pretty = json.dumps(failed_notice.payload, indent=2, sort_keys=True)
    assert pretty.replace('"', "&quot;") in html
    assert 'name="_save"' not in html


def test_the_outbox_is_read_only_for_superusers_too(admin_client, failed_notice):
    change = reverse("admin:notifications_notice_change", args=[failed_notice.pk])
    before = Notice.objects.values().get()

    responses = [
        admin_client.get(reverse("admin:notifications_notice_add")),
        admin_client.post(change, {"state": "SENT"}),
        admin_client.post(
            reverse("admin:notifications_notice_delete", args=[failed_notice.pk]), {"post": "yes"}
        ),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert Notice.objects.values().get() == before
    assert NoticeAttempt.objects.count() == 2


def test_the_outbox_filters_by_state_and_searches_by_event_and_job(admin_client, endpoint):
    job = make_job(user=make_user("op2"))
    by_job = make_notice(endpoint=endpoint, state=State.SENT, job=job)
    failed = make_notice(endpoint=endpoint, state=State.FAILED)

    def listed(query: str) -> set[uuid.UUID]:
        response = admin_client.get(NOTICES + query)
        assert response.status_code == 200
        return {notice.pk for notice in response.context["cl"].result_list}

    assert listed("?state__exact=FAILED") == {failed.pk}
    assert listed(f"?q={str(failed.event_id)[:8]}") == {failed.pk}
    assert listed(f"?q={job.pk}") == {by_job.pk}
    assert listed("?q=not-an-id") == set()


def queries_and_rows(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


def add_endpoints_and_notices(first: int, last: int) -> None:
    """Endpoints first..last-1, each with a cluster and a failed notice, and as many e-mail
    notices to users of their own, so that a query per row would show."""
    for n in range(first, last):
        endpoint = WebhookEndpoint.objects.create(
            name=f"hook{n}", url=f"https://hooks.example.net/{n}", secret=SECRET
        )
        endpoint.clusters.add(baker.make(Cluster, name=f"c{n}", base_url=f"http://10.0.0.{n}"))
        make_notice(endpoint=endpoint, state=State.FAILED)
        make_notice(user=make_user(f"user{n}"), state=State.SENT)


@pytest.mark.parametrize("url", [ENDPOINTS, NOTICES])
def test_list_queries_do_not_grow_with_rows(admin_client, url):
    add_endpoints_and_notices(0, 3)
    few = queries_and_rows(admin_client, url)
    # Still one page of 50 notices: a second page adds the capped count.
    add_endpoints_and_notices(3, 24)
    many = queries_and_rows(admin_client, url)

    assert (few[1], many[1]) == ((3, 24) if url == ENDPOINTS else (6, 48))
    assert few[0] == many[0]


# Delivering again.


def tasks_for(notices: list[Notice]) -> list[list[str]]:
    results = DBTaskResult.objects.filter(task_path=deliver_notice.module_path)
    wanted = {str(n.pk) for n in notices}
    return [r.args_kwargs["args"] for r in results if r.args_kwargs["args"][0] in wanted]


def deliver_again(client, notices: list[Notice]):
    return client.post(
        NOTICES,
        {"action": "deliver_again", ACTION_CHECKBOX_NAME: [n.pk for n in notices], "index": 0},
        follow=True,
    )


def test_deliver_again_queues_failed_and_dropped_notices_keeping_their_history(
    admin_client, admin_user, endpoint, failed_notice, caplog
):
    caplog.set_level(logging.INFO, logger="notifications.resend")
    dropped = make_notice(endpoint=endpoint, state=State.DROPPED, last_error="deactivated")
    sent = make_notice(endpoint=endpoint, state=State.SENT, finished_at=timezone.now())
    sent_before = Notice.objects.values().get(pk=sent.pk)
    started = timezone.now()

    response = deliver_again(admin_client, [failed_notice, dropped, sent])

    assert messages_of(response) == [
        "Queued 2 notice(s) to be delivered again. "
        "1 selected notice(s) had not failed and were left as they are."
    ]
    for notice in (failed_notice, dropped):
        again = Notice.objects.get(pk=notice.pk)
        assert again.state == State.PENDING
        assert again.next_attempt_at >= started
        assert (again.lease_until, again.finished_at) == (None, None)
        assert (again.created_at, again.attempts) == (notice.created_at, notice.attempts)
    assert NoticeAttempt.objects.filter(notice=failed_notice).count() == 2
    assert sorted(tasks_for([failed_notice, dropped, sent])) == sorted(
        [[str(failed_notice.pk)], [str(dropped.pk)]]
    )
    assert Notice.objects.values().get(pk=sent.pk) == sent_before
    [record] = [r for r in caplog.records if r.name == "notifications.resend"]
    assert "by admin" in record.getMessage() and str(failed_notice.pk) in record.getMessage()
    [entry] = entries("notices.resent")
    assert entry.actor == admin_user
    assert sorted(entry.details["notices"]) == sorted([str(failed_notice.pk), str(dropped.pk)])


def test_deliver_again_twice_queues_nothing_more(endpoint, failed_notice):
    assert notices_resend(notice_ids=[failed_notice.pk]) == 1
    assert notices_resend(notice_ids=[failed_notice.pk]) == 0
    assert len(tasks_for([failed_notice])) == 1


def test_a_notice_of_a_failed_digest_goes_again_in_its_digest(admin_client, operator):
    digest = make_notice(user=operator, event=Notice.DIGEST, state=State.FAILED, attempts=5)
    held = [
        make_notice(user=operator, state=State.FAILED, digest=digest, claimed_at=None)
        for _ in range(2)
    ]

    response = deliver_again(admin_client, [held[0]])

    assert messages_of(response) == [
        "Queued 1 notice(s) to be delivered again. "
        "Notices held for a digest go again in their digest."
    ]
    assert Notice.objects.get(pk=digest.pk).state == State.PENDING
    assert [Notice.objects.get(pk=n.pk).state for n in held] == [State.HELD, State.HELD]
    assert tasks_for([digest, *held]) == [[str(digest.pk)]]

    page = admin_client.get(reverse("admin:notifications_notice_change", args=[digest.pk]))
    link = f"{NOTICES}?digest={digest.pk}"
    assert f'<a href="{link}">2 notice(s)</a>' in page.text
    assert {n.pk for n in admin_client.get(link).context["cl"].result_list} == {n.pk for n in held}


@pytest.mark.parametrize(
    ("age", "state_after"), [(dt.timedelta(days=2), State.FAILED), (dt.timedelta(0), State.PENDING)]
)
def test_a_resent_notice_is_tried_at_once_then_retried_only_within_its_window(
    endpoint, monkeypatch, age, state_after
):
    created = timezone.now() - age
    notice = make_notice(endpoint=endpoint, state=State.FAILED, attempts=9, created_at=created)
    monkeypatch.setattr(
        delivery, "webhook_post", lambda **kw: Outcome(False, http_status=503, error="HTTP 503")
    )

    notices_resend(notice_ids=[notice.pk])
    assert notice_deliver(notice_id=notice.pk)

    notice.refresh_from_db()
    assert notice.state == state_after
    assert notice.attempts == 10
    assert NoticeAttempt.objects.filter(notice=notice, http_status=503).count() == 1


# Who may see and do what.


@pytest.mark.parametrize("page", [ENDPOINTS, ADD, NOTICES])
def test_staff_without_permissions_cannot_see_notifications(client, page):
    client.force_login(make_user("staff1", is_staff=True))
    assert client.get(page).status_code == 403


def test_auditors_review_the_outbox_and_the_endpoints_but_change_nothing(
    client, endpoint, failed_notice
):
    client.force_login(make_auditor())
    assert "Webhook endpoints" in client.get(reverse("admin:index")).text
    for page in (ENDPOINTS, NOTICES, change_url(endpoint), notice_url(failed_notice)):
        response = client.get(page)
        assert response.status_code == 200
        assert SECRET not in response.text
    assert 'name="secret"' not in client.get(change_url(endpoint)).text
    assert client.get(ADD).status_code == 403
    assert client.post(change_url(endpoint), form(secret=NEW_SECRET)).status_code == 403
    before = row_counts()
    deliver_again(client, [failed_notice])
    assert row_counts() == before
    assert Notice.objects.get(pk=failed_notice.pk).state == State.FAILED


@pytest.mark.parametrize("page", [ENDPOINTS, NOTICES])
def test_operator_is_sent_to_the_admin_sign_in(client, operator, page):
    client.force_login(operator)
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def staff_with(*codenames: str):
    user = make_user("staff1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_who_may_only_view_an_endpoint_sees_no_secret_field(client, endpoint):
    client.force_login(staff_with("view_webhookendpoint"))

    response = client.get(change_url(endpoint))

    assert response.status_code == 200
    assert 'name="secret"' not in response.text
    assert SECRET not in response.text
    assert "set (never shown)" in response.text
    assert client.post(change_url(endpoint), form(secret=NEW_SECRET)).status_code == 403


def test_who_may_only_view_notices_cannot_deliver_them_again(client, failed_notice):
    client.force_login(staff_with("view_notice"))

    page = client.get(NOTICES)
    assert page.status_code == 200
    assert "deliver_again" not in page.text
    deliver_again(client, [failed_notice])

    assert Notice.objects.get(pk=failed_notice.pk).state == State.FAILED
    assert tasks_for([failed_notice]) == []


def test_the_attempts_are_shown_to_whoever_may_view_the_notice(client, failed_notice):
    client.force_login(staff_with("view_notice"))
    response = client.get(reverse("admin:notifications_notice_change", args=[failed_notice.pk]))
    assert "timed out after 10 s" in response.text


def test_the_notice_list_says_more_than_when_it_stopped_counting(
    admin_client, endpoint, monkeypatch
):
    from lib.pagination import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    for _ in range(5):
        make_notice(endpoint=endpoint)
    assert "more than 3 notices" in admin_client.get(NOTICES).text


def test_a_cluster_id_too_large_for_the_database_is_a_form_error(admin_client):
    before = row_counts()
    response = admin_client.post(ADD, form(clusters=["99999999999999999999"]))
    assert response.status_code == 200
    assert "Select a valid choice" in response.context["adminform"].form.errors["clusters"][0]
    assert row_counts() == before
