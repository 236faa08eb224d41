"""A webhook endpoint's URL is a credential (a Slack or Teams incoming webhook is authorised by
its URL alone): stored encrypted, shown only as its destination on every page and in the
audit trail, write-only in the admin, and still what notices are posted to."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import reverse

from audit.models import AuditEntry
from lib.destinations import url_destination
from notifications.models import Notice, WebhookEndpoint
from tests.admin_helpers import make_auditor
from tests.helpers import database_text
from tests.servers import LoopbackServer, answer

pytestmark = pytest.mark.django_db

SECRET = "whsec-url-test-secret-never-shown"
# The part of a Slack incoming webhook's URL that authorises whoever holds it.
CREDENTIAL = "T0A1B2C3/B0D4E5F6/url-credential-xyz"
ADD = reverse("admin:notifications_webhookendpoint_add")
migration = importlib.import_module("notifications.migrations.0008_webhook_url_encrypted")


def change_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])


def form(url: str, **changes) -> dict:
    return {
        "name": "ops-slack",
        "url": url,
        "format": "slack",
        "secret": SECRET,
        "routing_key": "",
        "events": ["job.failed"],
        "is_active": "on",
        **changes,
    }


def stored_url() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT url FROM notifications_webhookendpoint")
        [(url,)] = cursor.fetchall()
    return url


def test_the_url_is_stored_encrypted_shown_nowhere_and_still_posted_to(admin_client, settings):
    settings.TMS_ALLOWED_WEBHOOK_HOSTS = []
    with LoopbackServer(answer(200, "ok", content_type="text/plain")) as server:
        url = f"{server.url}/services/{CREDENTIAL}"
        assert admin_client.post(ADD, form(url)).status_code == 302
        endpoint = WebhookEndpoint.objects.get()
        send_test = reverse("admin:notifications_webhookendpoint_send_test", args=[endpoint.pk])
        admin_client.post(send_test)
        [received] = server.received

    assert received.path == f"/services/{CREDENTIAL}"
    assert endpoint.url == url
    assert stored_url() != url
    assert CREDENTIAL not in database_text()
    events = {e.event for e in AuditEntry.objects.all()}
    assert {"webhook.created", "webhook.tested"} <= events
    notice = Notice.objects.get()
    pages = [
        reverse("admin:notifications_webhookendpoint_changelist"),
        change_url(endpoint),
        reverse("admin:notifications_webhookendpoint_history", args=[endpoint.pk]),
        reverse("admin:notifications_notice_change", args=[notice.pk]),
        reverse("admin:audit_auditentry_changelist"),
        reverse("audit_log"),
        reverse("audit_export"),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        body = b"".join(response) if response.streaming else response.content
        assert CREDENTIAL.encode() not in body, page
    listed = admin_client.get(reverse("admin:notifications_webhookendpoint_changelist")).text
    assert f"{server.url}/…" in listed


def test_the_change_form_never_fills_the_url_in_and_blank_keeps_it(admin_client):
    url = f"https://hooks.example.net/services/{CREDENTIAL}"
    admin_client.post(ADD, form(url))
    endpoint = WebhookEndpoint.objects.get()

    page = admin_client.get(change_url(endpoint)).text
    assert CREDENTIAL not in page
    assert 'type="url" name="url"' in page
    assert "Leave blank to keep the current URL (to https://hooks.example.net/…)" in page

    kept = admin_client.post(change_url(endpoint), form("", name="renamed", secret=""))
    assert kept.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.url) == ("renamed", url)
    [renamed] = AuditEntry.objects.filter(event="webhook.changed")
    assert renamed.details["after"] == {"name": "renamed"}

    # The same URL typed again is no change either.
    admin_client.post(change_url(endpoint), form(url, name="renamed", secret=""))
    assert AuditEntry.objects.filter(event="webhook.changed").count() == 1


def test_a_new_url_is_audited_by_destination_and_a_refused_form_does_not_show_it_back(
    admin_client, settings
):
    settings.TMS_ALLOWED_WEBHOOK_HOSTS = ["hooks.example.net", "chat.example.org"]
    admin_client.post(ADD, form(f"https://hooks.example.net/services/{CREDENTIAL}"))
    endpoint = WebhookEndpoint.objects.get()

    refused = admin_client.post(
        change_url(endpoint), form(f"ftp://chat.example.org/{CREDENTIAL}-2", secret="")
    )
    assert refused.status_code == 200
    assert CREDENTIAL not in refused.text
    endpoint.refresh_from_db()
    assert endpoint.url == f"https://hooks.example.net/services/{CREDENTIAL}"

    moved = admin_client.post(
        change_url(endpoint), form(f"https://chat.example.org/{CREDENTIAL}-2", secret="")
    )
    assert moved.status_code == 302
    [entry] = AuditEntry.objects.filter(event="webhook.changed")
    assert (entry.details["before"], entry.details["after"]) == (
        {"url": "https://hooks.example.net/…"},
        {"url": "changed, to https://chat.example.org/…"},
    )
    assert CREDENTIAL not in database_text()


def test_one_who_may_only_view_sees_the_destination_alone(client):
    endpoint = WebhookEndpoint.objects.create(
        name="ops-slack", url=f"https://hooks.example.net/services/{CREDENTIAL}", secret=SECRET
    )
    client.force_login(make_auditor())

    page = client.get(change_url(endpoint))

    assert page.status_code == 200
    assert "https://hooks.example.net/…" in page.text
    assert CREDENTIAL not in page.text


def test_the_migration_encrypts_urls_stored_in_clear_once_and_decrypts_them_going_back():
    url = f"https://hooks.example.net/services/{CREDENTIAL}"
    endpoint = WebhookEndpoint.objects.create(name="old", url=url, secret=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE notifications_webhookendpoint SET url = %s", [url])
    editor = SimpleNamespace(connection=connection)

    migration.encrypt(None, editor)
    encrypted = stored_url()
    migration.encrypt(None, editor)

    assert stored_url() == encrypted != url
    endpoint.refresh_from_db()
    assert endpoint.url == url
    migration.decrypt(None, editor)
    assert stored_url() == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hooks.slack.com/services/{CREDENTIAL}", "https://hooks.slack.com/…"),
        ("https://user:pass@chat.example.org:8443/hook?k=v", "https://chat.example.org:8443/…"),
        ("http://[::1]:9000/x", "http://[::1]:9000/…"),
        ("https://hooks.example.net", "https://hooks.example.net/"),
        ("https://hooks.example.net/", "https://hooks.example.net/"),
        ("https://hooks.example.net/?token=abc", "https://hooks.example.net/…"),
        ("not a url", "(not a valid URL)"),
        ("https://hooks.example.net:99999/x", "(not a valid URL)"),
        (None, "(cannot be read: the encryption key changed)"),
    ],
)
def test_a_destination_never_holds_the_path_query_or_user(url, shown):
    assert url_destination(url) == shown
