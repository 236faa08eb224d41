"""Company sign-in's guards that a well-behaved provider never reaches: a discovery document
that names another issuer or offers unsafe signing algorithms, a provider out of reach, an
answer made up by anyone, and sign-in through a provider that is not configured."""

from __future__ import annotations

import pytest

from accounts.services.provider import provider_client
from accounts.services.refusals import REFUSALS_RECORDED_PER_ADDRESS
from audit.models import AuditEntry
from tests.helpers import row_counts
from tests.servers import LoopbackServer, answer, refused_url

LOGIN = "/accounts/oidc/login/"
CALLBACK = "/accounts/oidc/callback/"


def discovery(issuer: str, **more) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        **more,
    }


@pytest.fixture
def sso(settings):
    def configure(issuer: str) -> None:
        settings.OIDC_ISSUER = issuer
        settings.OIDC_ENABLED = True
        settings.OIDC_CLIENT_ID = "tmsdash"
        settings.OIDC_CLIENT_SECRET = "client-secret-of-the-guards"
        settings.OIDC_GROUP_MAP = {"tms-operators": ["Operators"]}

    return configure


def test_only_asymmetric_signing_algorithms_are_accepted_whatever_the_provider_offers(
    client, db, sso
):
    offered = ["none", "HS256", "HS512", "RS256", "ES256"]
    documents = {}

    def respond(handler):
        answer(200, documents["discovery"])(handler)

    with LoopbackServer(respond) as provider:
        documents["discovery"] = discovery(
            provider.url, id_token_signing_alg_values_supported=offered
        )
        sso(provider.url)
        response = client.get(LOGIN)

        assert response.status_code == 302
        assert response["Location"].startswith(f"{provider.url}/auth?")
        accepted = provider_client().server_metadata["id_token_signing_alg_values_supported"]
    assert accepted == ["RS256", "ES256"]


def test_a_discovery_document_naming_another_issuer_signs_nobody_in(client, db, sso):
    with LoopbackServer(answer(200, discovery("https://login.example.com"))) as provider:
        sso(provider.url)
        before = row_counts()
        response = client.get(LOGIN)

    assert response.status_code == 502
    assert "names another issuer than OIDC_ISSUER" in response.content.decode()
    assert row_counts() == before


@pytest.mark.parametrize("fault", ["refused", "server error", "not json"])
def test_a_provider_out_of_reach_is_said_so_and_nothing_is_written(client, db, sso, fault):
    if fault == "refused":
        held, url = refused_url()
        with held:
            sso(url)
            before = row_counts()
            response = client.get(LOGIN)
    else:
        body = answer(500, "oops") if fault == "server error" else answer(200, "<html>")
        with LoopbackServer(body) as provider:
            sso(provider.url)
            before = row_counts()
            response = client.get(LOGIN)

    assert response.status_code == 502
    assert "could not be reached: try again in a moment" in response.content.decode()
    assert row_counts() == before


def test_without_a_provider_its_addresses_are_not_found(client, db):
    assert client.get(LOGIN).status_code == 404
    assert client.get(CALLBACK, {"code": "x", "state": "y"}).status_code == 404


def test_made_up_answers_are_refused_and_recorded_at_most_the_bound_per_address(client, db, sso):
    sso("http://127.0.0.1:9")
    for _ in range(REFUSALS_RECORDED_PER_ADDRESS + 5):
        page = client.get(CALLBACK, {"error": "access_denied", "error_description": "Call 555"})
        assert page.status_code == 403
        assert "555" not in page.content.decode()
    forged = client.get(CALLBACK, {"error": "<script>alert(1)</script>"})

    assert forged.status_code == 403
    assert "the identity provider answered unknown" in forged.content.decode()
    recorded = AuditEntry.objects.filter(event=AuditEntry.Event.AUTH_SIGNIN_REFUSED)
    assert recorded.count() == REFUSALS_RECORDED_PER_ADDRESS
