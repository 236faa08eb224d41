"""The admin's "Send a test" in a real browser: a superuser presses it on an endpoint's page,
a real receiver on loopback gets the test message, and the page shows its answer; a receiver
answering 500 is shown as such, never an error page; the page passes axe."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from notifications.endpoints import endpoint_save
from notifications.models import WebhookEndpoint
from tests.e2e import PASSWORD, sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.servers import LoopbackServer, answer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def superuser(transactional_db) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, "1 card posted", "Test message delivered: the endpoint answered HTTP 200."),
        (500, "boom", "Test message not delivered: the endpoint answered HTTP 500."),
    ],
)
def test_send_a_test_from_the_endpoints_page(page, superuser, status, body, said):
    with LoopbackServer(answer(status, body, content_type="text/plain")) as server:
        endpoint = endpoint_save(
            endpoint=WebhookEndpoint(
                name="ops-teams",
                url=server.url + "/teams",
                secret="whsec-" + "b" * 26,
                format=WebhookEndpoint.Format.TEAMS,
            )
        )
        sign_in(page, superuser)
        page.goto(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/")
        page.click("#send-test")
        message = page.locator(".messagelist li")
        expect(message).to_contain_text(said)
        expect(message).to_contain_text(f"Its answer began: “{body}”")
        assert_accessible(page)
        [received] = server.received

    card = json.loads(received.body)["attachments"][0]["content"]
    assert card["body"][0]["text"].startswith(
        "Test message from tmsdash to the endpoint “ops-teams”"
    )
    assert page.url.endswith(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/")
