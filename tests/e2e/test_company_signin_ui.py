"""Company sign-in in Chromium, through the real provider's own pages (devtools.idp): the
button, the provider's sign-in form, back on the dashboard with the mapped role, and signing
out at the provider too."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from devtools.idp import IdentityProvider
from tests.e2e.test_accessibility import assert_accessible

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "provider-pass-1"


@pytest.fixture(scope="module")
def idp(live_server, tmp_path_factory):
    with IdentityProvider(
        client_id="tmsdash-browser",
        client_secret="client-secret-for-the-browser-tests",
        redirect_uris=[f"{live_server.url}/accounts/oidc/callback/"],
        post_logout_redirect_uris=[f"{live_server.url}/accounts/login/"],
        log=tmp_path_factory.mktemp("idp") / "provider.log",
    ) as provider:
        yield provider


@pytest.fixture
def sso(settings, idp, live_server):
    settings.OIDC_ISSUER = idp.issuer
    settings.OIDC_ENABLED = True
    settings.OIDC_CLIENT_ID = "tmsdash-browser"
    settings.OIDC_CLIENT_SECRET = "client-secret-for-the-browser-tests"
    settings.OIDC_GROUP_MAP = {"tms-operators": ["Operators"]}
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.TMS_PUBLIC_URL = live_server.url
    settings.TMS_LOCAL_SIGNIN = False
    # As the settings do when OIDC_ISSUER is set: the sign-out form goes on to the provider.
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = {
        **policy,
        "DIRECTIVES": {
            **policy["DIRECTIVES"],
            "form-action": [*policy["DIRECTIVES"]["form-action"], idp.issuer],
        },
    }
    idp.set_user("sub-erin", username="erin", groups=["tms-operators"], email="e@example.com")
    return idp


def test_an_operator_signs_in_and_out_through_the_provider(page: Page, sso):
    page.goto("/accounts/login/")
    assert_accessible(page)
    page.get_by_role("link", name="Sign in with Test IdP").click()

    # The provider's own page.
    expect(page.get_by_label("Password")).to_be_visible()
    assert page.url.startswith(sso.issuer)
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator(".who")).to_have_text("erin")
    expect(page.get_by_role("heading", name="Set Action")).to_be_visible()
    assert User.objects.get(username="erin").groups.filter(name="Operators").exists()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    assert "/accounts/login/" in page.url
    page.get_by_role("link", name="Sign in with Test IdP").click()
    expect(page.get_by_label("Password")).to_be_visible()
    assert page.url.startswith(sso.issuer)
