"""The Permissions-Policy in a real browser: Chromium understands every feature it names, and
refuses them to the page, except the clipboard its Copy buttons write to."""

from __future__ import annotations

import pytest

from tmsdash.security import PERMISSIONS_POLICY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_browser_applies_the_whole_permissions_policy(page):
    console = []
    page.on("console", lambda message: console.append(message.text))
    response = page.goto("/accounts/login/")
    assert response.headers["permissions-policy"] == PERMISSIONS_POLICY
    allowed = set(page.evaluate("document.featurePolicy.allowedFeatures()"))
    denied = {item.split("=")[0] for item in PERMISSIONS_POLICY.split(", ") if item.endswith("()")}
    assert denied and not denied & allowed
    assert "clipboard-write" in allowed
    assert [text for text in console if "Permissions-Policy" in text] == []
