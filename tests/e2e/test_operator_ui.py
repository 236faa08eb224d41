"""The operator's pages in a real browser, against a live server, a real worker and the fake
cluster: what an operator sees when signing in, submitting, watching and finding jobs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_sign_in_refuses_a_wrong_password_and_shows_the_operator(page, operator):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "operator")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator(".error[role=alert]")).to_be_visible()
    expect(page.locator(".who")).to_have_count(0)

    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_have_text("operator")
