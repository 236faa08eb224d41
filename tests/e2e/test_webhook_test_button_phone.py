"""The admin's "Send a test" on a webhook endpoint's page, on a 390 px wide phone, light and
dark: the page passes axe before and after the test is sent, the button is in reach, and
nothing scrolls the page sideways."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from notifications.endpoints import endpoint_save
from notifications.models import WebhookEndpoint
from tests.e2e import PASSWORD, sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import PHONE, assert_in_view, assert_no_sideways_scroll
from tests.servers import LoopbackServer, answer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def superuser(transactional_db) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_send_a_test_on_a_phone(page, superuser, scheme):
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme=scheme)
    with LoopbackServer(answer(200, "ok", content_type="text/plain")) as server:
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
        assert_accessible(page)
        assert_no_sideways_scroll(page)
        button = page.locator("#send-test")
        button.scroll_into_view_if_needed()
        assert_in_view(button, page)

        button.click()

        expect(page.locator(".messagelist li")).to_contain_text("Test message delivered")
        assert_accessible(page)
        assert_no_sideways_scroll(page)
        assert len(server.received) == 1
