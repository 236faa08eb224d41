"""Password sign-in as break-glass only: with TMS_LOCAL_SIGNIN false, only the users named in
TMS_BREAK_GLASS_USERS sign in with a password; everyone else is refused with a page saying so
(the same words whether the account exists or not) and an audit entry, bounded like failed
sign-ins. Each break-glass sign-in is audited and e-mailed to every admin through the outbox.
The lock-out after failed sign-ins still applies."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.urls import reverse

from audit import receivers as audit_receivers
from audit.models import AuditEntry
from notifications.models import Notice, WebhookEndpoint
from tests.helpers import make_user

PASSWORD = "correct horse battery staple"
RESCUE_PASSWORD = "glass-hammer-4417-emergency"
LOGIN = reverse("login")
REFUSED = "Password sign-in is off"


class CountingHasher(MD5PasswordHasher):
    """A fast hasher counting the passwords it hashes."""

    algorithm = "counted_md5"
    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Each sign-in checks a password; the real hasher takes a fifth of a second for it."""
    settings.PASSWORD_HASHERS = ["tests.test_break_glass.CountingHasher"]


@pytest.fixture
def local_off(settings):
    settings.TMS_LOCAL_SIGNIN = False
    settings.TMS_BREAK_GLASS_USERS = ["rescue"]


@pytest.fixture
def people(db, fast_hashing):
    """op1 (a user with a password), rescue (the break-glass admin) and who else might be told:
    an admin with an address (told), one without, one inactive, and staff who is no admin."""
    op1 = make_user("op1", "Operators")
    op1.set_password(PASSWORD)
    op1.save()
    rescue = make_user("rescue", is_superuser=True, is_staff=True, email="rescue@example.test")
    rescue.set_password(RESCUE_PASSWORD)
    rescue.save()
    make_user("admin1", is_superuser=True, is_staff=True, email="admin1@example.test")
    make_user("admin2", is_superuser=True, is_staff=True)
    make_user("gone", is_superuser=True, is_staff=True, email="gone@example.test", is_active=False)
    make_user("staff1", is_staff=True, email="staff1@example.test")
    return op1


def sign_in(client, username: str, password: str, address: str = "10.0.0.9", url: str = LOGIN):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def error_of(response) -> str:
    [error] = re.findall(r'<p class="error" role="alert">(.*?)</p>', response.content.decode())
    return error


def events() -> list[str]:
    return list(AuditEntry.objects.order_by("pk").values_list("event", flat=True))


# Refusals.


def test_local_sign_in_off_refuses_the_right_password_and_writes_only_the_refusal(
    client, people, local_off
):
    before = AuditEntry.objects.count()
    response = sign_in(client, "op1", PASSWORD)

    assert response.status_code == 200
    assert REFUSED in error_of(response)
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.count() == before + 1
    entry = AuditEntry.objects.get(event=AuditEntry.Event.AUTH_SIGNIN_REFUSED)
    assert (entry.actor, entry.actor_username, entry.ip_address) == (None, "op1", "10.0.0.9")
    assert entry.details == {"method": "password", "reason": "local_signin_off"}
    assert PASSWORD not in str(AuditEntry.objects.values().get(pk=entry.pk))
    assert not Notice.objects.exists()
    # django-axes counted it as a failed attempt.
    assert AccessAttempt.objects.get(username="op1").failures_since_start == 1


def test_turning_local_sign_in_off_ends_the_password_sessions_but_break_glass_ones(
    client, people, settings
):
    assert sign_in(client, "op1", PASSWORD).status_code == 302
    rescue = Client()
    assert sign_in(rescue, "rescue", RESCUE_PASSWORD).status_code == 302

    settings.TMS_LOCAL_SIGNIN = False
    settings.TMS_BREAK_GLASS_USERS = ["rescue"]

    assert client.get("/jobs/").status_code == 302
    assert rescue.get("/jobs/").status_code == 200


def test_the_refusal_reads_the_same_whether_the_account_exists_or_is_break_glass(
    client, people, local_off
):
    refused = error_of(sign_in(client, "op1", PASSWORD))
    nobody = error_of(sign_in(client, "nobody", PASSWORD))
    wrong_rescue = error_of(sign_in(client, "rescue", "not-the-password"))

    assert refused == nobody == wrong_rescue
    assert "Please enter a correct username" not in refused
    # The audit trail, which admins read, tells them apart.
    assert events() == ["auth.signin_refused", "auth.signin_refused", "auth.login_failed"]


def test_a_refusal_hashes_the_password_as_a_check_would(client, people, local_off):
    """How long a refusal takes must not tell break-glass usernames from others."""
    counts = []
    for username in ("op1", "rescue", "nobody"):
        before = CountingHasher.hashed
        sign_in(client, username, "not-the-password")
        counts.append(CountingHasher.hashed - before)
    assert counts == [1, 1, 1]


def test_a_later_backend_cannot_sign_in_a_refused_user(client, people, local_off, settings):
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "django.contrib.auth.backends.ModelBackend",
    ]
    assert sign_in(client, "op1", PASSWORD).status_code == 200
    assert "_auth_user_id" not in client.session


def test_the_admin_sign_in_refuses_too(client, people, local_off):
    people.is_staff = True
    people.save()
    response = sign_in(client, "op1", PASSWORD, url=reverse("admin:login"))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert events() == ["auth.signin_refused"]


def test_with_local_sign_in_on_everyone_signs_in_and_no_one_else_is_told(client, people):
    assert sign_in(client, "op1", PASSWORD).status_code == 302
    assert events() == ["auth.login"]
    assert not Notice.objects.exists()


def test_refusals_from_one_address_are_recorded_at_most_the_bound_with_failures(
    client, people, local_off, monkeypatch
):
    monkeypatch.setattr(audit_receivers, "FAILED_SIGNINS_RECORDED_PER_ADDRESS", 3)
    sign_in(client, "rescue", "not-the-password")
    for n in range(5):
        assert sign_in(client, f"sprayed{n}", PASSWORD).status_code == 200
    assert events() == ["auth.login_failed", "auth.signin_refused", "auth.signin_refused"]
    # Another address has its own bound.
    sign_in(client, "op1", PASSWORD, address="10.0.0.10")
    assert AuditEntry.objects.filter(ip_address="10.0.0.10").count() == 1


# The lock-out stays.


def test_refused_sign_ins_still_lock_the_username_out(client, people, local_off):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "op1", PASSWORD).status_code == 200
    assert sign_in(client, "op1", PASSWORD).status_code == 429
    assert sign_in(client, "op1", PASSWORD).status_code == 429
    assert events().count("auth.signin_refused") == settings.AXES_FAILURE_LIMIT - 1
    assert events().count("auth.locked_out") == 1


def test_a_locked_out_break_glass_user_is_refused_even_with_the_right_password(
    client, people, local_off, mail
):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "rescue", "not-the-password")
    response = sign_in(client, "rescue", RESCUE_PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "auth.break_glass" not in events()
    assert not Notice.objects.exists()


# Break-glass sign-ins.


def test_a_break_glass_sign_in_is_audited_and_mailed_to_each_admin(
    client, people, local_off, mail, django_capture_on_commit_callbacks, run_queued_tasks
):
    notices_before = Notice.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_in(client, "rescue", RESCUE_PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(
        AuditEntry.objects.get(event="auth.login").actor_id
    )
    assert events() == ["auth.login", "auth.break_glass"]
    entry = AuditEntry.objects.get(event=AuditEntry.Event.AUTH_BREAK_GLASS)
    assert (entry.actor_username, entry.ip_address) == ("rescue", "10.0.0.9")
    assert entry.details == {"local_signin": False}
    # One notice per active admin with an address: the break-glass admin is one of them.
    notices = Notice.objects.filter(event="signin.break_glass")
    assert Notice.objects.count() == notices_before + 2
    assert sorted(notices.values_list("user__username", flat=True)) == ["admin1", "rescue"]
    assert {n.channel for n in notices} == {Notice.Channel.EMAIL}

    run_queued_tasks()
    assert set(Notice.objects.values_list("state", flat=True)) == {Notice.State.SENT}
    messages = {message["To"]: message for message in mail.messages}
    assert set(messages) == {"admin1@example.test", "rescue@example.test"}
    message = messages["admin1@example.test"]
    assert message["Subject"] == ("[tmsdash] Break-glass sign-in: rescue signed in with a password")
    occurred_at = notices.first().payload["occurred_at"]
    for part in (message.get_body(("plain",)), message.get_body(("html",))):
        text = part.get_content()
        assert "rescue" in text
        assert "10.0.0.9" in text
        assert occurred_at in text
        assert "/admin/audit/auditentry/?event__exact=auth.break_glass" in text
        assert RESCUE_PASSWORD not in text
    stored = str(list(Notice.objects.values()))
    assert RESCUE_PASSWORD not in stored


def test_a_break_glass_sign_in_is_told_even_with_local_sign_in_on(client, people, settings):
    settings.TMS_MAIL_ENABLED = True
    settings.TMS_BREAK_GLASS_USERS = ["rescue"]
    assert sign_in(client, "rescue", RESCUE_PASSWORD).status_code == 302
    entry = AuditEntry.objects.get(event=AuditEntry.Event.AUTH_BREAK_GLASS)
    assert entry.details == {"local_signin": True}
    assert Notice.objects.filter(event="signin.break_glass").count() == 2
    # Nobody else's sign-in is.
    client.logout()
    assert sign_in(client, "op1", PASSWORD).status_code == 302
    assert events().count("auth.break_glass") == 1


def test_a_break_glass_sign_in_through_the_admin_is_told_too(client, people, local_off, settings):
    settings.TMS_MAIL_ENABLED = True
    response = sign_in(client, "rescue", RESCUE_PASSWORD, url=reverse("admin:login"))
    assert response.status_code == 302
    assert events() == ["auth.login", "auth.break_glass"]
    assert Notice.objects.filter(event="signin.break_glass").count() == 2


def test_a_break_glass_user_signed_in_otherwise_than_by_password_is_not_told(
    client, people, local_off, settings
):
    """As by the company's provider: only a password sign-in is break-glass."""
    settings.TMS_MAIL_ENABLED = True
    other = "django.contrib.auth.backends.ModelBackend"
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, other]
    client.force_login(people.__class__.objects.get(username="rescue"), backend=other)
    assert events() == ["auth.login"]
    assert not Notice.objects.exists()


def test_without_email_configured_the_sign_in_is_audited_and_nobody_mailed(
    client, people, local_off
):
    assert sign_in(client, "rescue", RESCUE_PASSWORD).status_code == 302
    assert events() == ["auth.login", "auth.break_glass"]
    assert not Notice.objects.exists()


def test_a_webhook_subscribed_to_break_glass_sign_ins_is_sent_one(
    client, people, local_off, receiver, django_capture_on_commit_callbacks, run_queued_tasks
):
    WebhookEndpoint.objects.create(
        url=receiver.url, secret=receiver.secret, events=["signin.break_glass"]
    )
    WebhookEndpoint.objects.create(url=receiver.url, secret=receiver.secret, events=["job.failed"])
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(client, "rescue", RESCUE_PASSWORD)
    run_queued_tasks()
    [delivery] = receiver.received()
    assert delivery.signature_ok
    assert delivery.payload["event"] == "signin.break_glass"
    assert (delivery.payload["username"], delivery.payload["ip_address"]) == (
        "rescue",
        "10.0.0.9",
    )
    assert RESCUE_PASSWORD not in delivery.body.decode()


# The sign-in page.

DISCLOSURE_CLOSED = '<details class="break-glass">'
DISCLOSURE_OPEN = '<details class="break-glass" open>'


def test_with_local_sign_in_on_the_page_shows_the_password_form_alone(client, db):
    page = client.get(LOGIN).content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert "<details" not in page
    assert "Sign in with" not in page


def test_with_local_sign_in_off_the_password_form_is_behind_a_closed_disclosure(
    client, people, local_off
):
    page = client.get(LOGIN).content.decode()
    assert DISCLOSURE_CLOSED in page
    assert "<summary>Break-glass sign-in</summary>" in page
    # The form is inside the disclosure, labelled.
    inside = page.split(DISCLOSURE_CLOSED, 1)[1].split("</details>", 1)[0]
    assert '<label for="id_password">Password</label>' in inside
    assert 'name="password"' in inside
    # A refused attempt opens it, to show why.
    assert DISCLOSURE_OPEN in sign_in(client, "op1", PASSWORD).content.decode()


@pytest.fixture
def sso_on(settings):
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Acme Login"


def test_with_sso_on_the_provider_comes_first_and_keeps_where_to_go_next(
    client, people, local_off, sso_on
):
    page = client.get(LOGIN + "?next=/jobs/%3Fstatus%3DFAILED").content.decode()
    link = (
        '<a class="button sign-in-provider" href="/accounts/oidc/login/'
        '?next=%2Fjobs%2F%3Fstatus%3DFAILED">Sign in with Acme Login</a>'
    )
    assert link in page
    assert page.index(link) < page.index(DISCLOSURE_CLOSED)


def test_with_sso_on_a_refusal_names_the_provider(client, people, local_off, sso_on):
    error = error_of(sign_in(client, "op1", PASSWORD))
    assert error.startswith("Password sign-in is off: sign in with Acme Login.")


def test_with_sso_and_local_sign_in_on_both_show_without_a_disclosure(client, people, sso_on):
    page = client.get(LOGIN).content.decode()
    assert 'href="/accounts/oidc/login/">Sign in with Acme Login</a>' in page
    assert "Or with your password:" in page
    assert "<details" not in page
