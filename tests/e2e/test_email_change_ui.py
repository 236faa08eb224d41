"""The Notifications page's e-mail address in a real browser: asked, refused with its error,
waiting for confirmation, and confirmed through the link the loopback SMTP server received;
each state passing axe at 1,280 and at 390 px without scrolling sideways."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import PHONE, assert_no_sideways_scroll

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAGE = "/accounts/notifications/"


def check(page: Page) -> None:
    assert_accessible(page)
    assert_no_sideways_scroll(page)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, PHONE])
def test_changing_the_address_from_the_page(page, mail, operator, viewport):
    page.set_viewport_size(viewport)
    operator.email = "op1@old.example"
    operator.save()
    sign_in(page, operator, next=PAGE)

    page.fill("#id_email", "not an address")
    page.click("#change-email")
    expect(page.locator("#id_email_error")).to_have_text(
        "“not an address” is not an e-mail address."
    )
    expect(page.locator("#id_email")).to_have_attribute("aria-invalid", "true")
    check(page)

    page.fill("#id_email", "op1@new.example")
    page.click("#change-email")
    expect(page.locator("#pending-address")).to_contain_text("op1@new.example")
    expect(page.locator("#mail-address")).to_contain_text("op1@old.example")
    check(page)

    [message] = mail.messages
    [url] = re.findall(r"http://\S+", message.get_content())
    link = urlsplit(url)
    page.goto(f"{link.path}?{link.query}")
    expect(page.locator("#confirm-address")).to_have_text("op1@new.example")
    check(page)

    page.click("#confirm-email")
    expect(page.locator(".message")).to_have_text("Confirmed: e-mails now go to op1@new.example.")
    expect(page.locator("#mail-address")).to_contain_text("op1@new.example")
    expect(page.locator("#pending-address")).to_have_count(0)
    check(page)

    page.goto(f"{link.path}?{link.query}")
    expect(page.locator("#confirm-error")).to_contain_text("already used")
    check(page)
