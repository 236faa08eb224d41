"""Site-wide details: signing out says so, a favicon, and a 403 or 404 logged as one line."""

from __future__ import annotations

import logging

from django.templatetags.static import static
from django.urls import reverse

from tests.helpers import make_user


def test_signing_out_says_so_on_the_sign_in_page(client, operator):
    client.force_login(operator)
    response = client.post(reverse("logout"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert "You are signed out." in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


def test_every_page_has_a_favicon_that_is_served(client, db):
    content = client.get(reverse("login")).content.decode()
    icon = static("favicon.svg")
    assert f'<link rel="icon" href="{icon}" type="image/svg+xml">' in content
    response = client.get(icon)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"


def test_a_404_or_403_is_one_log_line_without_a_traceback(client, db, caplog):
    client.force_login(make_user("aud1", "Auditors"))
    with caplog.at_level(logging.INFO):
        assert client.get("/no-such-page/").status_code == 404
        assert client.get(reverse("set_action")).status_code == 403
    assert [(r.name, r.getMessage().split()[2]) for r in caplog.records] == [
        ("tmsdash.requests", "404"),
        ("tmsdash.requests", "403"),
    ]
    assert not any(r.exc_info for r in caplog.records)
