"""The API's interactive docs in a real browser: served by the dashboard, under its CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_docs_show_the_api_with_nothing_refused(page):
    refused: list[str] = []
    page.on("console", lambda message: message.type == "error" and refused.append(message.text))
    outside: list[str] = []
    page.on("request", lambda r: "localhost" not in r.url and outside.append(r.url))
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("TMS Dashboard API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert refused == []
    assert outside == []
