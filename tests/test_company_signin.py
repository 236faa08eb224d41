"""Company sign-in against a real OpenID provider on loopback (devtools.idp: panva's certified
oidc-provider, run by Node): the dashboard, served by the live server, signs people in through
the provider's own pages, checks each ID token, maps groups, renews and signs out."""

from __future__ import annotations

import datetime
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Identity, ProviderSession
from accounts.services.sessions import RENEW_AT
from api.tokens import token_create
from audit.models import AuditEntry
from devtools.idp import IdentityProvider
from jobs.tokens import token_decrypt
from tests.helpers import row_counts
from tests.idp_flows import provider_sign_in, provider_sign_out
from tests.live_web import hidden

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CLIENT_ID = "tmsdash-tests"
CLIENT_SECRET = "client-secret-for-the-tests-only"
PASSWORD = "provider-pass-1"
GROUP_MAP = {
    "tms-operators": ["Operators"],
    "tms-auditors": ["Auditors"],
    "tms-admins": ["superuser", "staff"],
}
Event = AuditEntry.Event


@pytest.fixture(scope="module")
def idp(live_server, tmp_path_factory):
    with IdentityProvider(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=[f"{live_server.url}/accounts/oidc/callback/"],
        post_logout_redirect_uris=[f"{live_server.url}/accounts/login/"],
        log=tmp_path_factory.mktemp("idp") / "provider.log",
    ) as provider:
        yield provider


def configure(settings, provider: IdentityProvider, url: str) -> None:
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_ENABLED = True
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_GROUP_MAP = GROUP_MAP
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.TMS_PUBLIC_URL = url


@pytest.fixture
def sso(settings, idp, live_server):
    configure(settings, idp, live_server.url)
    idp.set_user("sub-alice", username="alice", groups=["tms-operators"], email="a@example.com")
    return idp


def sign_in(url: str, username: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    start = browser.get(f"{url}/accounts/oidc/login/", allow_redirects=False, timeout=10)
    assert start.status_code == 302
    return browser, provider_sign_in(browser, start, username, PASSWORD)


def signed_in(browser: requests.Session, url: str) -> bool:
    page = browser.get(f"{url}/jobs/", allow_redirects=False, timeout=10)
    return page.status_code == 200


def roles(username: str) -> set[str]:
    user = User.objects.get(username=username)
    flags = {flag for flag in ("staff", "superuser") if getattr(user, f"is_{flag}")}
    return set(user.groups.values_list("name", flat=True)) | flags


def test_first_sign_in_creates_the_user_with_the_mapped_groups(sso, live_server):
    browser, landing = sign_in(live_server.url, "alice")

    assert landing.url == f"{live_server.url}/"
    assert signed_in(browser, live_server.url)
    user = User.objects.get(username="alice")
    assert (user.email, user.has_usable_password(), roles("alice")) == (
        "a@example.com",
        False,
        {"Operators"},
    )
    identity = Identity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (sso.issuer, "sub-alice")
    events = list(AuditEntry.objects.filter(actor=user).values_list("event", flat=True))
    assert {Event.AUTH_USER_CREATED, Event.AUTH_GROUPS_CHANGED, Event.AUTH_LOGIN} <= set(events)


def test_a_group_removed_at_the_provider_takes_the_role_away_at_the_next_sign_in(sso, live_server):
    sign_in(live_server.url, "alice")
    by_hand = Group.objects.create(name="Night shift")
    User.objects.get(username="alice").groups.add(by_hand)
    sso.set_user("sub-alice", username="alice", groups=["tms-auditors", "tms-admins"])

    sign_in(live_server.url, "alice")
    assert roles("alice") == {"Auditors", "Night shift", "staff", "superuser"}

    sso.set_user("sub-alice", username="alice", groups=["tms-operators"])
    sign_in(live_server.url, "alice")
    assert roles("alice") == {"Operators", "Night shift"}
    change = AuditEntry.objects.filter(event=Event.AUTH_GROUPS_CHANGED).order_by("-id").first()
    assert change.details == {
        "added": ["Operators"],
        "removed": ["Auditors", "staff", "superuser"],
    }


def test_users_are_found_by_subject_never_by_username(sso, live_server):
    local = User.objects.create_user("carol", password="local-pass-123")
    sso.set_user("sub-carol", username="carol", groups=["tms-operators"])
    sign_in(live_server.url, "carol")
    sso.set_user("sub-alice", username="alice", groups=["tms-operators"])
    sign_in(live_server.url, "alice")
    first = Identity.objects.get(subject="sub-alice").user_id

    sso.set_user("sub-alice", username="alice.new", groups=["tms-operators"])
    sign_in(live_server.url, "alice.new")

    assert Identity.objects.get(subject="sub-carol").user.username == "carol-2"
    assert not Identity.objects.filter(user=local).exists()
    assert User.objects.get(pk=first).username == "alice.new"
    assert Identity.objects.count() == 2


def test_a_person_in_no_mapped_group_is_refused_and_nothing_is_made(sso, live_server):
    sso.set_user("sub-bob", username="bob", groups=["marketing"])
    before = row_counts()

    browser, page = sign_in(live_server.url, "bob")

    assert page.status_code == 403
    assert "You could not be signed in" in page.text
    assert "in no group that this dashboard maps" in page.text
    assert not signed_in(browser, live_server.url)
    after = row_counts()
    assert after.pop("audit.AuditEntry") == before.pop("audit.AuditEntry") + 1
    after.pop("sessions.Session"), before.pop("sessions.Session")
    assert after == before
    refusal = AuditEntry.objects.get(event=Event.AUTH_SIGNIN_REFUSED)
    assert refusal.actor_username == "bob"


@pytest.mark.parametrize(
    "defect",
    [
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "wrong_nonce",
        "alg_none",
        "tampered",
        "hs256_public_key",
        "unknown_key",
    ],
)
def test_an_identity_token_that_fails_a_check_signs_nobody_in(sso, live_server, defect):
    sso.mutate_next_id_token(defect)

    browser, page = sign_in(live_server.url, "alice")

    assert page.status_code == 403, page.text
    assert "You could not be signed in" in page.text
    assert "eyJ" not in page.text
    assert not signed_in(browser, live_server.url)
    assert not User.objects.filter(username="alice").exists()
    assert AuditEntry.objects.filter(event=Event.AUTH_SIGNIN_REFUSED).count() == 1


def test_a_key_rotated_at_the_provider_is_followed(sso, live_server):
    sign_in(live_server.url, "alice")
    sso.rotate_keys()

    browser, _ = sign_in(live_server.url, "alice")

    assert signed_in(browser, live_server.url)


def test_a_sign_in_answer_is_used_once_and_an_error_description_is_not_shown(sso, live_server):
    browser = requests.Session()
    start = browser.get(f"{live_server.url}/accounts/oidc/login/", allow_redirects=False)
    landing = provider_sign_in(browser, start, "alice", PASSWORD)
    [callback] = [r.url for r in landing.history if "/accounts/oidc/callback/" in r.url]
    replay = browser.get(callback)
    assert replay.status_code == 403
    assert "already used or has expired" in replay.text

    forged = browser.get(
        f"{live_server.url}/accounts/oidc/callback/",
        params={"error": "access_denied", "error_description": "Call 555-0100 for help"},
    )
    assert forged.status_code == 403
    assert "refused the sign-in" in forged.text
    assert "555-0100" not in forged.text


def test_renewal_applies_the_providers_groups_and_a_disabled_user_is_signed_out(
    sso, live_server, settings
):
    settings.OIDC_RENEW_SECONDS = 0
    browser, _ = sign_in(live_server.url, "alice")
    user = User.objects.get(username="alice")
    api = token_create(user=user, name="pipeline").secret

    def api_answers(secret: str = api) -> int:
        return requests.get(
            f"{live_server.url}/api/v1/jobs",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        ).status_code

    sso.set_user("sub-alice", username="alice", groups=["tms-operators", "tms-auditors"])
    assert signed_in(browser, live_server.url)
    assert roles("alice") == {"Operators", "Auditors"}
    assert api_answers() == 200

    sso.set_user("sub-alice", username="alice", groups=["tms-operators"], enabled=False)
    page = browser.get(f"{live_server.url}/jobs/", timeout=10)

    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    assert "the identity provider no longer lets you in" in page.text
    assert not signed_in(browser, live_server.url)
    assert api_answers() == 401
    user.refresh_from_db()
    assert not user.is_active
    assert Identity.objects.get(user=user).suspended_at is not None
    assert not ProviderSession.objects.filter(identity__user=user).exists()
    refusal = AuditEntry.objects.get(event=Event.AUTH_RENEWAL_REFUSED)
    assert refusal.details["suspended"] is True

    # Back at the provider: signed in and active again, with new tokens; the old ones stay
    # revoked (the dashboard revokes a deactivated user's tokens, audited).
    sso.set_user("sub-alice", username="alice", groups=["tms-operators"])
    again, _ = sign_in(live_server.url, "alice")
    assert signed_in(again, live_server.url)
    assert api_answers() == 401
    assert api_answers(token_create(user=user, name="pipeline 2").secret) == 200
    assert AuditEntry.objects.filter(event=Event.API_TOKEN_REVOKED).count() == 1


def test_a_pages_parallel_requests_renew_its_session_once(sso, live_server, caplog):
    caplog.set_level(logging.INFO, logger="accounts")
    browser, _ = sign_in(live_server.url, "alice")
    [row] = ProviderSession.objects.all()
    session = SessionStore(session_key=row.session_key)
    session[RENEW_AT] = 0
    session.save()
    ProviderSession.objects.update(renew_at=timezone.now())
    start = threading.Barrier(8)

    def request() -> int:
        parallel = requests.Session()
        parallel.cookies.update(browser.cookies)
        start.wait()
        return parallel.get(
            f"{live_server.url}/jobs/", allow_redirects=False, timeout=10
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: request(), range(8)))

    assert answers == [200] * 8
    assert caplog.text.count("renewed with the identity provider") == 1
    assert ProviderSession.objects.get().renew_at > timezone.now()
    assert not AuditEntry.objects.filter(event=Event.AUTH_RENEWAL_REFUSED).exists()


def test_a_provider_out_of_reach_at_renewal_costs_nothing(settings, live_server, tmp_path):
    with IdentityProvider(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=[f"{live_server.url}/accounts/oidc/callback/"],
        post_logout_redirect_uris=[f"{live_server.url}/accounts/login/"],
        log=tmp_path / "provider.log",
    ) as provider:
        configure(settings, provider, live_server.url)
        provider.set_user("sub-dora", username="dora", groups=["tms-operators"])
        browser, _ = sign_in(live_server.url, "dora")
    settings.OIDC_RENEW_SECONDS = 0
    ProviderSession.objects.update(renew_at=timezone.now())

    assert signed_in(browser, live_server.url)
    assert User.objects.get(username="dora").is_active
    assert not AuditEntry.objects.filter(event=Event.AUTH_RENEWAL_REFUSED).exists()


def test_signing_out_ends_the_session_at_the_provider_too(sso, live_server):
    browser, landing = sign_in(live_server.url, "alice")
    csrf = hidden(landing, "csrfmiddlewaretoken")

    out = browser.post(
        f"{live_server.url}/accounts/logout/",
        data={"csrfmiddlewaretoken": csrf},
        headers={"Referer": landing.url},
        allow_redirects=False,
    )
    assert out.status_code == 302
    assert out.headers["Location"].startswith(sso.issuer)
    back = provider_sign_out(browser, out)

    assert back.url.startswith(f"{live_server.url}/accounts/login/")
    assert "You are signed out." in back.text
    assert not ProviderSession.objects.exists()
    # The provider asks for the password again: its own session ended too.
    start = browser.get(f"{live_server.url}/accounts/oidc/login/")
    assert start.url.startswith(sso.issuer)
    assert 'name="password"' in start.text


def test_a_session_through_the_provider_ends_at_its_max_age(sso, live_server, settings):
    settings.OIDC_SESSION_MAX_AGE = 600
    sign_in(live_server.url, "alice")

    [session] = Session.objects.all()
    lasts = session.expire_date - timezone.now()
    assert datetime.timedelta(seconds=590) < lasts <= datetime.timedelta(seconds=600)
    row = ProviderSession.objects.get()
    assert row.session_key == session.session_key
    assert row.expires_at == pytest.approx(session.expire_date, abs=datetime.timedelta(seconds=2))


def test_no_token_of_the_provider_is_stored_shown_or_logged_in_clear(
    sso, live_server, settings, caplog
):
    settings.OIDC_RENEW_SECONDS = 0
    caplog.set_level(logging.DEBUG)
    browser, landing = sign_in(live_server.url, "alice")
    pages = [landing.text, browser.get(f"{live_server.url}/jobs/").text]

    row = ProviderSession.objects.get()
    assert token_decrypt(row.id_token).startswith("eyJ")
    assert token_decrypt(row.refresh_token)
    stored = " ".join(
        [
            row.id_token,
            row.refresh_token,
            *Session.objects.values_list("session_data", flat=True),
            *(str(d) for d in AuditEntry.objects.values_list("details", flat=True)),
        ]
    )
    for secret in (token_decrypt(row.id_token), token_decrypt(row.refresh_token)):
        assert secret not in stored
        assert secret not in caplog.text
        assert all(secret not in page for page in pages)
    assert "eyJ" not in caplog.text
    assert CLIENT_SECRET not in caplog.text + " ".join(pages)
    [callback] = [r.url for r in landing.history if "/accounts/oidc/callback/" in r.url]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    # The tests' own client logs the addresses it follows (urllib3, at DEBUG): not the server's.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "urllib3.connectionpool")
    assert code not in logged + stored


def test_deactivate_user_stops_tokens_sessions_and_sign_in(sso, live_server, capsys):
    browser, _ = sign_in(live_server.url, "alice")
    user = User.objects.get(username="alice")
    api = token_create(user=user, name="pipeline").secret

    call_command("deactivate_user", "alice")

    assert "alice is deactivated" in capsys.readouterr().out
    assert not signed_in(browser, live_server.url)
    answer = requests.get(
        f"{live_server.url}/api/v1/jobs", headers={"Authorization": f"Bearer {api}"}, timeout=10
    )
    assert answer.status_code == 401
    assert AuditEntry.objects.filter(event=Event.USER_DEACTIVATED).count() == 1
    again, page = sign_in(live_server.url, "alice")
    assert page.status_code == 403
    assert "deactivated" in page.text
    assert not signed_in(again, live_server.url)


def test_deactivate_user_of_nobody_changes_nothing(db):
    from django.core.management.base import CommandError

    before = row_counts()
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("deactivate_user", "nobody")
    assert row_counts() == before


@pytest.mark.parametrize(
    ("asked", "lands"),
    [("/jobs/", "/jobs/"), ("https://evil.example/", "/"), ("//evil.example/", "/")],
)
def test_a_sign_in_goes_on_to_where_it_was_asked_on_this_site_only(sso, live_server, asked, lands):
    browser = requests.Session()
    start = browser.get(
        f"{live_server.url}/accounts/oidc/login/",
        params={"next": asked},
        allow_redirects=False,
        timeout=10,
    )

    landing = provider_sign_in(browser, start, "alice", PASSWORD)

    assert landing.url == f"{live_server.url}{lands}"
