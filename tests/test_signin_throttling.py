"""Brute force is slowed: after a few failed sign-ins for one username from one address, that
pair is refused for a cool-off period, and the audit trail records it without being flooded."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from audit.receivers import FAILED_SIGNINS_RECORDED_PER_ADDRESS
from audit.services import client_ip

PASSWORD = "correct horse battery staple"
LOGIN = reverse("login")


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Each sign-in checks a password; the real hasher takes a fifth of a second for it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(django_user_model, fast_hashing):
    return django_user_model.objects.create_user(username="op1", password=PASSWORD)


def sign_in(client, password: str, username: str = "op1", address: str = "10.0.0.7", **meta):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **meta
    )


def events(event: str) -> int:
    return AuditEntry.objects.filter(event=event).count()


def test_after_five_failures_even_the_right_password_is_refused(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "wrong").status_code == 200
    # The fifth failure locks the username out from this address.
    assert sign_in(client, "wrong").status_code == 429
    refused = sign_in(client, PASSWORD)
    assert refused.status_code == 429
    assert b"Too many failed sign-ins" in refused.content
    assert b"refused for 15 minutes" in refused.content
    assert "_auth_user_id" not in client.session
    assert events("auth.login") == 0
    # The failure that locked out is recorded as the lock-out.
    assert events("auth.login_failed") == settings.AXES_FAILURE_LIMIT - 1
    [locked] = AuditEntry.objects.filter(event="auth.locked_out")
    assert (locked.actor_username, locked.ip_address) == ("op1", "10.0.0.7")
    assert locked.details == {"failed_sign_ins": 5, "cool_off_seconds": 900}


def test_attempts_during_the_lock_out_add_nothing_to_the_audit_trail(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT + 30):
        sign_in(client, "wrong")
    assert events("auth.login_failed") == settings.AXES_FAILURE_LIMIT - 1
    assert events("auth.locked_out") == 1


def test_the_lock_out_is_per_username_and_address(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong")
    assert sign_in(client, PASSWORD, address="10.0.0.8").status_code == 302


def test_the_lock_out_ends_after_the_cool_off(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong")
    assert sign_in(client, PASSWORD).status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_admin_sign_in_is_throttled_too(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "op1", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "op1", "password": PASSWORD})
    assert response.status_code == 429


def test_an_anonymous_visitor_cannot_flood_the_audit_trail(client, db):
    for n in range(FAILED_SIGNINS_RECORDED_PER_ADDRESS + 40):
        sign_in(client, "wrong", username=f"guess{n}")
    assert events("auth.login_failed") == FAILED_SIGNINS_RECORDED_PER_ADDRESS


# The client's address behind proxies.


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.1"),  # no trusted proxy: the header is the client's words
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # a forged entry on the left is ignored
        (2, "203.0.113.5, 10.0.0.9", "203.0.113.5"),
        (2, "203.0.113.5", "10.0.0.1"),  # fewer hops than proxies: not believed
        (1, "not-an-address", "10.0.0.1"),
    ],
)
def test_the_client_address_is_read_behind_the_configured_proxies(
    rf, settings, proxies, forwarded, expected
):
    settings.TMS_TRUSTED_PROXIES = proxies
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_each_client_has_its_own_lock_out(client, user, settings):
    settings.TMS_TRUSTED_PROXIES = 1
    proxy = {"address": "10.0.0.1"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)
    assert sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy).status_code == 429
    # Another client behind the same proxy is not locked out with the first.
    other = sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy)
    assert other.status_code == 302
    assert AuditEntry.objects.get(event="auth.locked_out").ip_address == "203.0.113.5"
