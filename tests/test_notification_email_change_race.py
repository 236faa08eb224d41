"""One e-mail change confirmation link followed by several clients at the same moment changes
the address once and audits `email.changed` once; the others are told it was already used."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEntry
from notifications.models import NotificationPreference
from tests.helpers import THREADS, make_user, run_concurrently
from tests.test_notification_email_change import CHANGE, CONFIRM, NEW, OLD, link_in, token_of


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_link_followed_at_once_by_several_clients_changes_the_address_once(mail):
    user = make_user("op1", "Operators", email=OLD)
    asker = Client()
    asker.force_login(user)
    asker.post(CHANGE, {"email": NEW})
    token = token_of(link_in(mail.messages[0]))
    clients = []
    for _ in range(THREADS):
        client = Client()
        client.force_login(user)
        clients.append(client)

    responses, errors = run_concurrently(lambda n: clients[n].post(CONFIRM, {"token": token}))

    assert errors == []
    assert sorted(response.status_code for response in responses) == [302] + [400] * (THREADS - 1)
    for response in responses:
        if response.status_code == 400:
            assert "This confirmation link was already used" in response.text
    user.refresh_from_db()
    assert user.email == NEW
    assert NotificationPreference.objects.get(user=user).pending_email == ""
    [entry] = AuditEntry.objects.filter(event=AuditEntry.Event.EMAIL_CHANGED)
    assert entry.details == {"before": OLD, "after": NEW}
