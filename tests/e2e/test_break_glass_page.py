"""The sign-in page with password sign-in off, on a 390 px wide phone: the company's provider
first, the password form folded away behind "Break-glass sign-in" until opened (by keyboard
too), nothing scrolling sideways, no axe-core violation; a break-glass admin signs in through
it, and a refusal opens it again to say why."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from audit.models import AuditEntry
from tests.e2e import PASSWORD
from tests.e2e.test_accessibility import assert_accessible

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(page: Page, settings) -> Page:
    settings.TMS_LOCAL_SIGNIN = False
    settings.TMS_BREAK_GLASS_USERS = ["rescue"]
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Acme Login"
    page.set_viewport_size(PHONE)
    return page


def no_sideways_scroll(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_break_glass_admin_opens_the_disclosure_and_signs_in(phone: Page, transactional_db):
    User.objects.create_superuser("rescue", password=PASSWORD)
    phone.goto("/accounts/login/?next=/jobs/")

    provider = phone.get_by_role("link", name="Sign in with Acme Login")
    expect(provider).to_be_visible()
    expect(provider).to_have_attribute("href", "/accounts/oidc/login/?next=%2Fjobs%2F")
    password = phone.get_by_label("Password")
    expect(password).to_be_hidden()
    assert no_sideways_scroll(phone)
    assert_accessible(phone)

    # By keyboard: the summary takes the focus and Enter opens it.
    phone.locator("summary").focus()
    phone.keyboard.press("Enter")
    expect(password).to_be_visible()
    box = password.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert no_sideways_scroll(phone)

    phone.get_by_label("Username").fill("rescue")
    password.fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.locator(".who")).to_have_text("rescue")
    assert phone.url.endswith("/jobs/")
    assert AuditEntry.objects.filter(event="auth.break_glass", actor_username="rescue").exists()


def test_a_refused_sign_in_comes_back_with_the_disclosure_open_saying_why(
    phone: Page, transactional_db
):
    User.objects.create_user("op1", password=PASSWORD)
    phone.goto("/accounts/login/")
    phone.get_by_text("Break-glass sign-in").click()
    phone.get_by_label("Username").fill("op1")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()

    alert = phone.get_by_role("alert").filter(has_text="Password sign-in is off")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("sign in with Acme Login")
    expect(phone.get_by_label("Password")).to_be_visible()
    assert no_sideways_scroll(phone)
    assert_accessible(phone)
    expect(phone.locator(".who")).to_have_count(0)
