"""Sign-in, failed sign-in and sign-out are recorded in the audit trail."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEntry

PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="op1", password=PASSWORD)


def test_sign_in_is_audited_with_ip(client, user):
    response = client.post(reverse("login"), {"username": "op1", "password": PASSWORD})
    assert response.status_code == 302
    entry = AuditEntry.objects.get(event=AuditEntry.Event.AUTH_LOGIN)
    assert entry.actor == user
    assert entry.actor_username == "op1"
    assert entry.ip_address == "127.0.0.1"


def test_failed_sign_in_is_audited_without_the_password(client, user):
    response = client.post(reverse("login"), {"username": "op1", "password": "wrong-pass"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    entry = AuditEntry.objects.get(event=AuditEntry.Event.AUTH_LOGIN_FAILED)
    assert entry.actor is None
    assert entry.actor_username == "op1"
    assert entry.ip_address == "127.0.0.1"
    stored = str(AuditEntry.objects.values().get(pk=entry.pk))
    assert "wrong-pass" not in stored
    assert not AuditEntry.objects.filter(event=AuditEntry.Event.AUTH_LOGIN).exists()


def test_sign_out_by_post_is_audited(client, user):
    client.force_login(user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    entry = AuditEntry.objects.get(event=AuditEntry.Event.AUTH_LOGOUT)
    assert entry.actor == user


def test_sign_out_by_get_is_refused(client, user):
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    assert not AuditEntry.objects.filter(event=AuditEntry.Event.AUTH_LOGOUT).exists()


def test_signed_in_pages_show_the_username_and_sign_out(client, user):
    client.force_login(user)
    response = client.get(reverse("job_list"))
    assert response.status_code == 200
    assert b'<span class="who">op1</span>' in response.content
    assert b'id="sign-out"' in response.content
