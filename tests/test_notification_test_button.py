"""The admin's "Send a test" on a webhook endpoint: a real admin request sends a test message
through the outbox at once to a real receiver on loopback, and the admin is shown what it
answered, or why it could not."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEntry
from notifications.endpoints import endpoint_save
from notifications.models import Notice, NoticeAttempt, WebhookEndpoint
from tests.helpers import free_port, make_user
from tests.servers import LoopbackServer, answer

pytestmark = pytest.mark.django_db

SECRET = "whsec-T3st-button-secret-never-shown"


def make_endpoint(url: str, **fields) -> WebhookEndpoint:
    return endpoint_save(
        endpoint=WebhookEndpoint(name="ops-slack", url=url, secret=SECRET, **fields)
    )


def send_test(client, endpoint: WebhookEndpoint):
    url = reverse("admin:notifications_webhookendpoint_send_test", args=[endpoint.pk])
    return client.post(url, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_change_page_offers_the_button(admin_client):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    page = admin_client.get(
        reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])
    )

    assert 'id="send-test"' in page.text
    assert reverse("admin:notifications_webhookendpoint_send_test", args=[endpoint.pk]) in page.text


def test_the_receiver_gets_the_test_and_the_admin_sees_its_answer(admin_client, admin_user):
    with LoopbackServer(answer(200, "ok", content_type="text/plain")) as server:
        endpoint = make_endpoint(server.url + "/slack", format=WebhookEndpoint.Format.SLACK)
        response = send_test(admin_client, endpoint)

        [received] = server.received
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse(
        "admin:notifications_webhookendpoint_change", args=[endpoint.pk]
    )
    body = json.loads(received.body)
    assert body["text"].startswith("Test message from tmsdash to the endpoint “ops-slack”")
    assert "blocks" in body
    assert SECRET not in received.body.decode()
    assert messages_of(response) == [
        "Test message delivered: the endpoint answered HTTP 200. Its answer began: “ok”"
    ]
    assert "Test message delivered: the endpoint answered HTTP 200." in response.text
    notice = Notice.objects.get()
    assert (notice.event, notice.state, notice.endpoint) == ("test", Notice.State.SENT, endpoint)
    [attempt] = NoticeAttempt.objects.all()
    assert (attempt.ok, attempt.http_status) == (True, 200)
    [entry] = AuditEntry.objects.filter(event="webhook.tested")
    assert entry.actor == admin_user
    assert entry.details["endpoint_id"] == endpoint.pk


def test_a_receiver_answering_500_is_shown_as_such_and_not_retried(admin_client):
    with LoopbackServer(answer(500, "upstream exploded", content_type="text/plain")) as server:
        endpoint = make_endpoint(server.url + "/hook")
        response = send_test(admin_client, endpoint)
        assert len(server.received) == 1

    assert response.status_code == 200
    assert messages_of(response) == [
        "Test message not delivered: the endpoint answered HTTP 500. "
        "Its answer began: “upstream exploded”"
    ]
    notice = Notice.objects.get()
    assert notice.state == Notice.State.FAILED
    assert notice.last_error == "HTTP 500"


def test_an_unreachable_receiver_is_shown_as_such(admin_client):
    endpoint = make_endpoint(f"http://127.0.0.1:{free_port()}/hook")

    response = send_test(admin_client, endpoint)

    assert response.status_code == 200
    assert messages_of(response) == [
        "Test message not delivered: Connection failed: connection refused."
    ]
    assert Notice.objects.get().state == Notice.State.FAILED


def test_a_deactivated_endpoint_is_not_sent_the_test_and_the_admin_is_told_why(admin_client):
    with LoopbackServer(answer(204)) as server:
        endpoint = make_endpoint(server.url + "/hook", is_active=False)
        response = send_test(admin_client, endpoint)
        assert server.received == []

    assert messages_of(response) == [
        "Test message not delivered: Not sent: The webhook endpoint was deactivated."
    ]
    assert Notice.objects.get().state == Notice.State.DROPPED


def test_who_may_only_view_an_endpoint_cannot_send_a_test(client):
    user = make_user("staff1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    client.force_login(user)
    with LoopbackServer(answer(204)) as server:
        endpoint = make_endpoint(server.url + "/hook")
        page = client.get(reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]))
        response = send_test(client, endpoint)
        assert server.received == []

    assert 'id="send-test"' not in page.text
    assert response.status_code == 403
    assert not Notice.objects.exists()


def test_a_get_sends_nothing(admin_client):
    with LoopbackServer(answer(204)) as server:
        endpoint = make_endpoint(server.url + "/hook")
        url = reverse("admin:notifications_webhookendpoint_send_test", args=[endpoint.pk])
        response = admin_client.get(url)
        assert server.received == []

    assert response.status_code == 302
    assert not Notice.objects.exists()
