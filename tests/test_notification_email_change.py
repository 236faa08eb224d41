"""A user's own e-mail address, set on the Notifications page: a link sent to it through the
real SMTP server on loopback confirms it, once; until then e-mails go to the old address."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.signing import TimestampSigner, b62_encode

from audit.models import AuditEntry
from jobs.models import Job
from notifications import email_change
from notifications.delivery import notice_deliver
from notifications.events import notices_record_job_end
from notifications.models import Notice, NotificationPreference
from tests.e2e import make_job
from tests.helpers import make_user, row_counts

pytestmark = pytest.mark.django_db

PAGE = "/accounts/notifications/"
CHANGE = "/accounts/notifications/email/"
CONFIRM = "/accounts/notifications/email/confirm/"
OLD = "op1@old.example"
NEW = "op1@new.example"


@pytest.fixture
def user(db):
    return make_user("op1", "Operators", email=OLD)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def words(response) -> str:
    return " ".join(response.content.decode().split())


def link_in(message) -> str:
    """The path and query of the confirmation link a message carries."""
    [url] = re.findall(r"http://\S+", message.get_content())
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def ask(client, address: str = NEW):
    return client.post(CHANGE, {"email": address})


def token_of(link: str) -> str:
    [token] = parse_qs(urlsplit(link).query)["token"]
    return token


def test_asking_sends_a_link_to_the_new_address_and_keeps_the_old_one(signed_in, user, mail):
    response = ask(signed_in)

    assert response.status_code == 302
    [message] = mail.messages
    assert message["To"] == NEW
    assert message["Subject"] == "[tmsdash] Confirm your new e-mail address"
    assert link_in(message).startswith(CONFIRM + "?token=")
    user.refresh_from_db()
    assert user.email == OLD
    page = words(signed_in.get(PAGE))
    assert f"Waiting for confirmation: <strong>{NEW}</strong>" in page
    assert f"until then e-mails go to {OLD}" in page
    [entry] = AuditEntry.objects.filter(event="email.change_requested")
    assert (entry.actor, entry.details) == (user, {"before": OLD, "requested": NEW})


def test_until_confirmed_notices_go_to_the_old_address(signed_in, user, mail, cluster):
    ask(signed_in)
    mail.clear()
    job = make_job(user, cluster, Job.Status.FAILED, http_status=500, error_message="boom")
    notices_record_job_end(job_id=job.pk, status=job.status, reason=None)
    [notice] = Notice.objects.filter(channel="email")
    assert notice_deliver(notice_id=notice.pk)

    [message] = mail.messages
    assert message["To"] == OLD


def test_the_link_confirms_once_and_the_new_address_is_used(signed_in, user, mail, cluster):
    ask(signed_in)
    link = link_in(mail.messages[0])

    page = signed_in.get(link)
    assert page.status_code == 200
    assert f'<strong id="confirm-address">{NEW}</strong>' in page.text
    user.refresh_from_db()
    assert user.email == OLD, "opening the link changes nothing; Confirm does"

    response = signed_in.post(CONFIRM, {"token": token_of(link)})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == NEW
    assert NotificationPreference.objects.get(user=user).pending_email == ""
    [entry] = AuditEntry.objects.filter(event="email.changed")
    assert (entry.actor, entry.details) == (user, {"before": OLD, "after": NEW})

    before = row_counts()
    again = signed_in.post(CONFIRM, {"token": token_of(link)})
    assert again.status_code == 400
    assert "This confirmation link was already used" in again.text
    assert row_counts() == before

    mail.clear()
    job = make_job(user, cluster, Job.Status.FAILED, http_status=500, error_message="boom")
    notices_record_job_end(job_id=job.pk, status=job.status, reason=None)
    [notice] = Notice.objects.filter(channel="email")
    assert notice_deliver(notice_id=notice.pk)
    assert [m["To"] for m in mail.messages] == [NEW]


def test_a_newer_request_makes_the_older_link_useless(signed_in, user, mail):
    ask(signed_in)
    ask(signed_in, "op1@newer.example")
    first, second = (link_in(m) for m in mail.messages)

    before = row_counts()
    response = signed_in.post(CONFIRM, {"token": token_of(first)})
    assert response.status_code == 400
    assert row_counts() == before
    assert signed_in.post(CONFIRM, {"token": token_of(second)}).status_code == 302
    user.refresh_from_db()
    assert user.email == "op1@newer.example"


class _Signed25HoursAgo(TimestampSigner):
    def timestamp(self) -> str:
        return b62_encode(int(time.time()) - 25 * 3600)


def test_an_expired_link_gives_a_clear_error_and_writes_nothing(signed_in, user, mail):
    ask(signed_in)
    nonce = NotificationPreference.objects.get(user=user).pending_email_nonce
    token = _Signed25HoursAgo(salt=email_change.SALT).sign_object(
        {"u": user.pk, "e": NEW, "n": nonce}
    )

    before = row_counts()
    for response in (
        signed_in.get(CONFIRM, {"token": token}),
        signed_in.post(CONFIRM, {"token": token}),
    ):
        assert response.status_code == 400
        assert "This confirmation link has expired" in response.text
    assert row_counts() == before
    user.refresh_from_db()
    assert user.email == OLD


@pytest.mark.parametrize("tamper", ["altered", "empty", "garbage"])
def test_a_bad_link_gives_a_clear_error_and_writes_nothing(signed_in, user, mail, tamper):
    ask(signed_in)
    token = token_of(link_in(mail.messages[0]))
    token = {"altered": token[:-2] + "xx", "empty": "", "garbage": "not-a-token"}[tamper]

    before = row_counts()
    response = signed_in.post(CONFIRM, {"token": token})

    assert response.status_code == 400
    assert "This confirmation link is not valid" in response.text
    assert row_counts() == before
    user.refresh_from_db()
    assert user.email == OLD


def test_another_users_link_is_refused(client, user, mail):
    client.force_login(user)
    ask(client)
    link = link_in(mail.messages[0])
    client.force_login(make_user("op2", "Operators", email="op2@example.test"))

    before = row_counts()
    response = client.post(CONFIRM, {"token": token_of(link)})

    assert response.status_code == 400
    assert "sent for another account" in response.text
    assert row_counts() == before


def test_the_link_asks_to_sign_in_first(client, user, mail):
    client.force_login(user)
    ask(client)
    link = link_in(mail.messages[0])
    client.logout()

    response = client.get(link)

    assert response.status_code == 302
    assert "next=" in response["Location"]


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("not an address", "“not an address” is not an e-mail address."),
        ("", "Type the new address."),
        ("a@" + "b" * 260 + ".example", "An address has at most 254 characters."),
        (OLD, "This is already the address of your account."),
    ],
)
def test_a_bad_address_gets_a_clear_error_and_nothing_is_written(
    signed_in, user, mail, address, error
):
    before = row_counts()
    response = ask(signed_in, address)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert 'id="id_email_error"' in response.text
    assert row_counts() == before
    assert mail.messages == []


def test_without_mail_nothing_can_be_confirmed_and_nothing_is_written(signed_in, settings):
    settings.TMS_MAIL_ENABLED = False
    before = row_counts()

    response = ask(signed_in)

    assert response.status_code == 400
    assert "This server sends no e-mail" in response.text
    assert row_counts() == before


def test_an_address_the_mail_server_refuses_writes_nothing(signed_in, mail):
    mail.refuse(NEW)
    before = row_counts()

    response = ask(signed_in)

    assert response.status_code == 400
    assert "The mail server refused this address" in response.text
    assert row_counts() == before


def test_a_user_without_an_address_can_add_one(client, mail):
    user = make_user("op3", "Operators")
    client.force_login(user)
    ask(client, "op3@example.test")
    link = link_in(mail.messages[0])

    assert client.post(CONFIRM, {"token": token_of(link)}).status_code == 302
    user.refresh_from_db()
    assert user.email == "op3@example.test"
