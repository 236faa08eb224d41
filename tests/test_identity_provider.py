"""The test identity provider (devtools.idp), used by hand as a relying party would: discovery,
its sign-in page, the code exchange with PKCE, refresh, disabled users, key rotation, every
spoiled ID token it can hand out, and RP-initiated logout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, RSAKey

from devtools.idp import IdentityProvider
from tests.idp_flows import follow, provider_sign_in, provider_sign_out
from tests.servers import LoopbackServer, answer

CLIENT_ID = "tmsdash"
CLIENT_SECRET = "idp-test-client-secret"
PASSWORD = "provider-pass-1"
TIMEOUT = 10


@dataclass
class RelyingParty:
    idp: IdentityProvider
    callback: str
    signed_out: str
    discovery: dict


@pytest.fixture(scope="module")
def rp() -> Iterator[RelyingParty]:
    with LoopbackServer(answer(200, "the relying party", content_type="text/html")) as server:
        callback, signed_out = f"{server.url}/callback", f"{server.url}/signed-out"
        with IdentityProvider(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uris=[callback],
            post_logout_redirect_uris=[signed_out],
        ) as idp:
            url = f"{idp.issuer}/.well-known/openid-configuration"
            discovery = requests.get(url, timeout=TIMEOUT).json()
            yield RelyingParty(idp, callback, signed_out, discovery)


@dataclass
class Authorization:
    browser: requests.Session
    response: requests.Response
    state: str
    nonce: str
    verifier: str


def authorize(
    rp: RelyingParty, browser: requests.Session | None = None, **params: str
) -> Authorization:
    """Sends the browser to the authorization endpoint (code flow, PKCE S256, state, nonce);
    its first answer, not followed."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": rp.callback,
        "scope": "openid email profile offline_access",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **params,
    }
    browser = browser or requests.Session()
    url = f"{rp.discovery['authorization_endpoint']}?{urlencode(query)}"
    response = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    return Authorization(browser, response, state, nonce, verifier)


def callback_query(response: requests.Response, rp: RelyingParty) -> dict[str, str]:
    assert response.url.startswith(f"{rp.callback}?"), response.url
    return {name: values[0] for name, values in parse_qs(urlsplit(response.url).query).items()}


def token_call(rp: RelyingParty, data: dict[str, str]) -> requests.Response:
    return requests.post(
        rp.discovery["token_endpoint"],
        data=data,
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=TIMEOUT,
    )


def exchange(rp: RelyingParty, authorization: Authorization, landing: requests.Response) -> dict:
    query = callback_query(landing, rp)
    assert query["state"] == authorization.state
    data = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": rp.callback,
        "code_verifier": authorization.verifier,
    }
    response = token_call(rp, data)
    assert response.status_code == 200, response.text
    return response.json()


def refresh(rp: RelyingParty, refresh_token: str) -> requests.Response:
    return token_call(rp, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def sign_in(rp: RelyingParty, username: str, **params: str) -> tuple[Authorization, dict]:
    authorization = authorize(rp, **params)
    landing = provider_sign_in(authorization.browser, authorization.response, username, PASSWORD)
    return authorization, exchange(rp, authorization, landing)


def jwks(rp: RelyingParty) -> KeySet:
    return KeySet.import_key_set(requests.get(rp.discovery["jwks_uri"], timeout=TIMEOUT).json())


def verified(rp: RelyingParty, id_token: str) -> dict:
    """The claims of an ID token whose RS256 signature the provider's JWKS verifies."""
    return jwt.decode(id_token, jwks(rp), algorithms=["RS256"]).claims


def parts(id_token: str) -> tuple[dict, dict, str]:
    header, payload, signature = id_token.split(".")

    def decoded(part: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    return decoded(header), decoded(payload), signature


def test_discovery_describes_the_provider(rp):
    discovery = rp.discovery
    assert discovery["issuer"] == rp.idp.issuer
    assert rp.idp.issuer.startswith("http://127.0.0.1:")
    for endpoint in ("authorization", "token", "end_session"):
        assert discovery[f"{endpoint}_endpoint"].startswith(f"{rp.idp.issuer}/")
    assert discovery["jwks_uri"].startswith(f"{rp.idp.issuer}/")
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert "client_secret_basic" in discovery["token_endpoint_auth_methods_supported"]
    assert set(discovery["scopes_supported"]) == {"openid", "email", "profile", "offline_access"}


def test_a_wrong_password_shows_an_error_and_a_right_one_signs_in(rp):
    rp.idp.set_user("sub-pw", username="pat", groups=["tms-operators"])
    authorization = authorize(rp)
    page = provider_sign_in(authorization.browser, authorization.response, "pat", "wrong")
    assert page.url.startswith(rp.idp.issuer)
    assert "<title>Test IdP</title>" in page.text
    assert "Wrong username or password." in page.text
    assert 'name="username" value="pat"' in page.text

    landing = provider_sign_in(authorization.browser, page, "pat", PASSWORD)
    assert "code" in callback_query(landing, rp)


def test_a_disabled_user_cannot_sign_in(rp):
    rp.idp.set_user("sub-off", username="olga", groups=["tms-operators"], enabled=False)
    authorization = authorize(rp)
    page = provider_sign_in(authorization.browser, authorization.response, "olga", PASSWORD)
    assert page.url.startswith(rp.idp.issuer)
    assert "This account is disabled." in page.text


def test_a_username_another_user_holds_is_refused(rp):
    rp.idp.set_user("sub-first", username="taken", groups=[])
    with pytest.raises(ValueError, match="username taken belongs to another sub"):
        rp.idp.set_user("sub-second", username="taken", groups=[])


def test_pkce_is_required(rp):
    authorization = authorize(rp, code_challenge="", code_challenge_method="")
    assert authorization.response.is_redirect
    location = authorization.response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(rp.callback)
    assert query["error"] == ["invalid_request"]
    assert "PKCE" in query["error_description"][0]


def test_the_code_exchange_gives_an_id_token_with_the_users_claims_and_a_refresh_token(rp):
    rp.idp.set_user("sub-ada", username="ada", groups=["tms-operators"], email="ada@example.com")
    authorization, tokens = sign_in(rp, "ada", scope="openid email profile")

    claims = verified(rp, tokens["id_token"])
    assert claims["iss"] == rp.idp.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == "sub-ada"
    assert claims["nonce"] == authorization.nonce
    assert claims["preferred_username"] == claims["name"] == "ada"
    assert claims["email"] == "ada@example.com"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["tms-operators"]
    assert claims["iat"] <= time.time() < claims["exp"]
    assert parts(tokens["id_token"])[0]["alg"] == "RS256"
    assert tokens["refresh_token"]


def test_a_client_with_a_wrong_secret_is_refused(rp):
    rp.idp.set_user("sub-sec", username="sec", groups=[])
    authorization = authorize(rp)
    landing = provider_sign_in(authorization.browser, authorization.response, "sec", PASSWORD)
    response = requests.post(
        rp.discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": callback_query(landing, rp)["code"],
            "redirect_uri": rp.callback,
            "code_verifier": authorization.verifier,
        },
        auth=(CLIENT_ID, "not-the-secret"),
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_asking_for_consent_needs_no_page_and_keeps_offline_access(rp):
    rp.idp.set_user("sub-con", username="con", groups=["tms-auditors"])
    _, tokens = sign_in(rp, "con", prompt="consent")
    assert "offline_access" in tokens["scope"].split()
    assert tokens["refresh_token"]


def test_a_refresh_carries_the_users_current_groups_and_username(rp):
    rp.idp.set_user("sub-bo", username="bo", groups=["tms-operators"])
    _, tokens = sign_in(rp, "bo")
    rp.idp.set_user("sub-bo", username="bo-renamed", groups=["tms-auditors", "tms-admins"])

    response = refresh(rp, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    claims = verified(rp, response.json()["id_token"])
    assert claims["sub"] == "sub-bo"
    assert claims["preferred_username"] == "bo-renamed"
    assert claims["groups"] == ["tms-auditors", "tms-admins"]


def test_a_disabled_user_is_refused_renewal_and_a_silent_sign_in_until_enabled(rp):
    rp.idp.set_user("sub-cy", username="cy", groups=["tms-operators"])
    authorization, tokens = sign_in(rp, "cy")
    silent = authorize(rp, authorization.browser, prompt="none")
    assert "code" in callback_query(follow(silent.browser, silent.response), rp)

    rp.idp.set_user("sub-cy", username="cy", groups=["tms-operators"], enabled=False)
    response = refresh(rp, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    silent = authorize(rp, authorization.browser, prompt="none")
    query = callback_query(follow(silent.browser, silent.response), rp)
    assert query["error"] == "login_required"
    assert "code" not in query

    page = follow(authorization.browser, authorize(rp, authorization.browser).response)
    assert 'type="password"' in page.text

    rp.idp.set_user("sub-cy", username="cy", groups=["tms-operators"])
    _, tokens = sign_in(rp, "cy")
    assert verified(rp, tokens["id_token"])["sub"] == "sub-cy"


def test_rotating_keys_leaves_only_the_new_key_and_keeps_users_and_tokens(rp):
    rp.idp.set_user("sub-kim", username="kim", groups=["tms-operators"])
    _, tokens = sign_in(rp, "kim")
    old_kid = parts(tokens["id_token"])[0]["kid"]
    assert [key.kid for key in jwks(rp).keys] == [old_kid]

    rp.idp.rotate_keys()
    new_kids = [key.kid for key in jwks(rp).keys]
    assert len(new_kids) == 1
    assert new_kids != [old_kid]
    response = refresh(rp, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert parts(response.json()["id_token"])[0]["kid"] == new_kids[0]
    assert verified(rp, response.json()["id_token"])["sub"] == "sub-kim"
    _, tokens = sign_in(rp, "kim")
    assert parts(tokens["id_token"])[0]["kid"] == new_kids[0]


def real_key(rp: RelyingParty) -> RSAKey:
    (key,) = jwks(rp).keys
    return key


def check_expired(rp, id_token, authorization):
    claims = verified(rp, id_token)
    assert claims["exp"] < time.time() - 3500
    assert claims["iat"] < time.time() - 3600


def check_wrong_audience(rp, id_token, authorization):
    assert verified(rp, id_token)["aud"] not in (CLIENT_ID, [CLIENT_ID])


def check_wrong_issuer(rp, id_token, authorization):
    assert verified(rp, id_token)["iss"] != rp.idp.issuer


def check_wrong_nonce(rp, id_token, authorization):
    assert verified(rp, id_token)["nonce"] != authorization.nonce


def check_alg_none(rp, id_token, authorization):
    header, payload, signature = parts(id_token)
    assert header == {"alg": "none"}
    assert signature == ""
    assert payload["sub"] == "sub-mut"


def check_tampered(rp, id_token, authorization):
    header, payload, _ = parts(id_token)
    assert header["kid"] == real_key(rp).kid
    assert "tms-admins" in payload["groups"]
    with pytest.raises(BadSignatureError):
        verified(rp, id_token)


def check_hs256_public_key(rp, id_token, authorization):
    header, payload, signature = parts(id_token)
    assert header["alg"] == "HS256"
    signing_input = id_token.rsplit(".", 1)[0].encode()
    pem = real_key(rp).as_pem(private=False)
    mac = base64.urlsafe_b64encode(hmac.digest(pem, signing_input, "sha256")).rstrip(b"=")
    assert mac.decode() == signature
    assert payload["aud"] == CLIENT_ID


def check_unknown_key(rp, id_token, authorization):
    header, payload, _ = parts(id_token)
    assert header["alg"] == "RS256"
    assert header["kid"] not in [key.kid for key in jwks(rp).keys]
    with pytest.raises(BadSignatureError):
        jwt.decode(id_token, real_key(rp), algorithms=["RS256"])
    assert payload["aud"] == CLIENT_ID


MUTATIONS = {
    "expired": check_expired,
    "wrong_audience": check_wrong_audience,
    "wrong_issuer": check_wrong_issuer,
    "wrong_nonce": check_wrong_nonce,
    "alg_none": check_alg_none,
    "tampered": check_tampered,
    "hs256_public_key": check_hs256_public_key,
    "unknown_key": check_unknown_key,
}


@pytest.mark.parametrize("kind", MUTATIONS)
def test_a_mutation_spoils_the_next_id_token_only(rp, kind):
    rp.idp.set_user("sub-mut", username="mut", groups=["tms-operators"])
    rp.idp.mutate_next_id_token(kind)
    authorization, tokens = sign_in(rp, "mut")
    MUTATIONS[kind](rp, tokens["id_token"], authorization)

    response = refresh(rp, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    claims = verified(rp, response.json()["id_token"])
    assert (claims["aud"], claims["iss"]) == (CLIENT_ID, rp.idp.issuer)


def test_a_mutation_applies_to_a_refresh_too(rp):
    rp.idp.set_user("sub-ref", username="ref", groups=["tms-operators"])
    _, tokens = sign_in(rp, "ref")
    rp.idp.mutate_next_id_token("wrong_audience")
    response = refresh(rp, tokens["refresh_token"])
    assert verified(rp, response.json()["id_token"])["aud"] == "another-client"


def test_an_unknown_mutation_is_refused(rp):
    with pytest.raises(ValueError, match="unknown mutation"):
        rp.idp.mutate_next_id_token("expird")


def test_signing_out_ends_the_provider_session_and_its_tokens(rp):
    rp.idp.set_user("sub-dee", username="dee", groups=["tms-operators"])
    authorization, tokens = sign_in(rp, "dee")
    browser = authorization.browser
    again = authorize(rp, browser)
    assert "code" in callback_query(follow(browser, again.response), rp)

    query = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": rp.signed_out,
        "state": "after-logout",
    }
    url = f"{rp.discovery['end_session_endpoint']}?{urlencode(query)}"
    page = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    assert ">Sign out</button>" in page.text
    landing = provider_sign_out(browser, page)
    assert landing.url == f"{rp.signed_out}?state=after-logout"

    assert refresh(rp, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    again = authorize(rp, browser)
    page = follow(browser, again.response)
    assert page.url.startswith(f"{rp.idp.issuer}/interaction/")
    assert 'type="password"' in page.text


def test_a_provider_that_cannot_start_says_why():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        idp = IdentityProvider(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uris=["http://127.0.0.1:9/callback"],
            post_logout_redirect_uris=["http://127.0.0.1:9/signed-out"],
            port=taken.getsockname()[1],
        )
        with pytest.raises(RuntimeError, match=r"stopped with exit code 1(.|\n)*EADDRINUSE"):
            idp.start()
        idp.stop()
