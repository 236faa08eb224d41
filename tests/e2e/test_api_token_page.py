"""The API tokens page in a real browser: a token is made, copied and shown once, revoked;
the page has no axe violation, and fits a 390 px wide phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from api.models import ApiToken
from api.tokens import token_create
from tests.e2e import sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import PHONE, assert_no_sideways_scroll
from tests.helpers import database_text

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAGE = "/accounts/api-tokens/"


def create_token(page: Page, name: str, *, read_only: bool = False) -> str:
    """Create a token through the form; return the token the page shows."""
    page.fill("#id_name", name)
    page.select_option("#id_expires_days", "30")
    if read_only:
        page.check("#id_read_only")
    page.click("#create-api-token")
    expect(page.locator("#new-token-box")).to_contain_text("Copy it now: it is shown only once.")
    return page.locator("#new-token").inner_text()


def test_a_token_is_created_copied_shown_once_and_revoked(page, operator):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, operator, next=PAGE)
    expect(page.locator("#no-tokens")).to_be_visible()
    assert_accessible(page)

    secret = create_token(page, "release pipeline", read_only=True)
    token = ApiToken.objects.get(user=operator)
    assert secret.startswith(f"tms_{token.prefix}_")
    page.click("#copy-new-token")
    expect(page.locator("#copy-new-token")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator(f'tr[data-token="{token.prefix}"]')
    expect(row).to_contain_text("Read-only")
    expect(row).to_contain_text("never used")
    # On a desktop screen the whole table shows, its Revoke buttons with it.
    assert page.locator(".table-scroll").evaluate("box => box.scrollWidth <= box.clientWidth")
    assert_accessible(page)

    page.goto(PAGE)
    expect(page.locator("#new-token-box")).to_have_count(0)
    assert secret not in page.content()
    assert secret not in database_text()

    row.get_by_role("button", name="Revoke the token release pipeline").click()
    expect(page.locator(".message")).to_contain_text("revoked")
    expect(row).to_have_attribute("data-state", "revoked")
    expect(row.locator(".token-state")).to_have_text("Revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    assert_accessible(page)


def test_the_copy_button_shows_only_once_the_script_can_copy(browser, live_server, operator):
    """A Copy button without the script would do nothing, and a click before the script runs
    would be lost: the button shows once the script is in place, as does the zone switch."""
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, operator, next=PAGE)
        create_token(page, "no script")
        expect(page.locator("#new-token")).to_be_visible()
        expect(page.locator("#copy-new-token")).to_be_hidden()
        expect(page.locator("#zone-switch")).to_be_hidden()
    finally:
        context.close()


# A browser that refuses the asynchronous clipboard (no focus, a policy): the same as Chromium's
# own refusal, a rejected promise.
REFUSING_CLIPBOARD = """
navigator.clipboard.writeText = () =>
  Promise.reject(new DOMException("refused", "NotAllowedError"));
"""


def test_a_refused_clipboard_still_copies_by_selection_and_says_so(page, operator):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.add_init_script(REFUSING_CLIPBOARD)
    sign_in(page, operator, next=PAGE)
    secret = create_token(page, "refused clipboard")
    page.click("#copy-new-token")
    expect(page.locator("#copy-new-token")).to_have_text("Copied")
    expect(page.locator("#live-announcer")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("getSelection().toString()") == secret
    assert page.evaluate("navigator.clipboard.readText()") == secret


def test_field_errors_are_tied_to_their_fields(page, operator):
    sign_in(page, operator, next=PAGE)
    page.fill("#id_name", "   ")
    page.click("#create-api-token")
    name = page.locator("#id_name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_name_error")).to_have_text("Give the token a name.")
    assert "id_name_error" in name.get_attribute("aria-describedby")
    assert ApiToken.objects.count() == 0
    assert_accessible(page)


def test_the_page_fits_a_phone(page, operator):
    token_create(user=operator, name="a name long enough to need the room a phone lacks")
    page.set_viewport_size(PHONE)
    sign_in(page, operator, next=PAGE)
    expect(page.locator("#api-tokens")).to_be_visible()
    assert_no_sideways_scroll(page)
    create_token(page, "phone")
    assert_no_sideways_scroll(page)
    # Whether the browser has to break the token depends on its random characters (it may
    # break after a "-"); that it may break it anywhere does not.
    wrap = page.locator("#new-token").evaluate("code => getComputedStyle(code).overflowWrap")
    assert wrap == "anywhere"
