"""A user's own e-mail address, set on the Notifications page and used once confirmed.

Asking for a new address sends a link to it (signed with SECRET_KEY, salted, valid for
CONFIRM_MAX_AGE) and keeps it as pending; e-mails go on to the account's address until the
link is followed, by the same user signed in. Each request draws a new nonce, which the link
carries and the confirmation clears: a link works once, and only the latest one. Both steps
are audited (`email.change_requested`, `email.changed`).
"""

from __future__ import annotations

import secrets
import smtplib
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from audit.models import AuditEntry
from audit.services import audit_record
from notifications.models import NotificationPreference

SALT = "notifications.email_change"
CONFIRM_MAX_AGE = timedelta(hours=24)
MAX_LENGTH = 254
EXPIRED = "This confirmation link has expired: ask for the change again on the Notifications page."
BAD = "This confirmation link is not valid: check that it was copied whole, or ask again."
SPENT = (
    "This confirmation link was already used, or a newer one was sent since: nothing was changed."
)
OTHER_USER = "This confirmation link was sent for another account: nothing was changed."


def _signer() -> TimestampSigner:
    return TimestampSigner(salt=SALT)


def _clean(address: str) -> str:
    address = address.strip()
    if not address:
        raise ValidationError({"email": "Type the new address."}, code="email_required")
    if len(address) > MAX_LENGTH:
        raise ValidationError(
            {"email": f"An address has at most {MAX_LENGTH} characters."}, code="email_long"
        )
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(
            {"email": f"“{address}” is not an e-mail address."}, code="email_invalid"
        ) from None
    local, _at, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def email_change_request(*, user, address: str, ip_address: str | None = None) -> str:
    """Send a confirmation link to `address` and keep it as the user's pending address;
    returns the address as kept.

    Raises ValidationError and writes nothing for an address that is not one, is already the
    account's, when this server sends no e-mail, or when the mail server did not take the
    message.
    """
    address = _clean(address)
    if address.lower() == user.email.lower():
        raise ValidationError(
            {"email": "This is already the address of your account."}, code="email_same"
        )
    if not settings.TMS_MAIL_ENABLED:
        raise ValidationError(
            {"email": "This server sends no e-mail (EMAIL_URL is not set): no link can be sent."},
            code="email_disabled",
        )
    nonce = secrets.token_hex(16)
    token = _signer().sign_object({"u": user.pk, "e": address, "n": nonce})
    link = (
        settings.TMS_PUBLIC_URL
        + reverse("notification_email_confirm")
        + "?"
        + urlencode({"token": token})
    )
    context = {"user": user, "address": address, "link": link, "hours": _hours()}
    message = EmailMessage(
        subject="[tmsdash] Confirm your new e-mail address",
        body=render_to_string("notifications/email/confirm_address.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused:
        raise ValidationError(
            {"email": "The mail server refused this address: nothing was changed."},
            code="email_refused",
        ) from None
    except (smtplib.SMTPException, OSError):
        raise ValidationError(
            "The confirmation could not be sent (the mail server did not take it): nothing "
            "was changed. Try again later.",
            code="email_not_sent",
        ) from None
    with transaction.atomic():
        NotificationPreference.objects.get_or_create(user=user)
        preference = NotificationPreference.objects.select_for_update().get(user=user)
        preference.pending_email = address
        preference.pending_email_nonce = nonce
        preference.save(update_fields=["pending_email", "pending_email_nonce", "updated_at"])
        audit_record(
            event=AuditEntry.Event.EMAIL_CHANGE_REQUESTED,
            actor=user,
            ip_address=ip_address,
            details={"before": user.email, "requested": address},
        )
    return address


def _hours() -> int:
    return int(CONFIRM_MAX_AGE.total_seconds() // 3600)


def email_change_read(*, user, token: str) -> str:
    """The address a confirmation link would set for `user`; raises ValidationError (with
    why) for a link expired, altered, of another user, already used or replaced."""
    try:
        data = _signer().unsign_object(token, max_age=CONFIRM_MAX_AGE)
    except SignatureExpired:
        raise ValidationError(EXPIRED, code="email_link_expired") from None
    except (BadSignature, ValueError):
        raise ValidationError(BAD, code="email_link_bad") from None
    if not isinstance(data, dict) or data.get("u") != user.pk:
        raise ValidationError(OTHER_USER, code="email_link_other_user")
    preference = NotificationPreference.objects.filter(user=user).first()
    if (
        preference is None
        or not preference.pending_email_nonce
        or not secrets.compare_digest(preference.pending_email_nonce, str(data.get("n", "")))
        or preference.pending_email != data.get("e")
    ):
        raise ValidationError(SPENT, code="email_link_spent")
    return preference.pending_email


def email_change_confirm(*, user, token: str, ip_address: str | None = None) -> str:
    """Make the link's address the account's, once; returns it. Raises ValidationError and
    writes nothing for a link `email_change_read` refuses (checked again under a lock, so that
    a link followed twice at once changes the address once)."""
    with transaction.atomic():
        list(NotificationPreference.objects.select_for_update().filter(user=user).values("pk"))
        address = email_change_read(user=user, token=token)
        before = get_user_model().objects.get(pk=user.pk).email
        get_user_model().objects.filter(pk=user.pk).update(email=address)
        NotificationPreference.objects.filter(user=user).update(
            pending_email="", pending_email_nonce=""
        )
        audit_record(
            event=AuditEntry.Event.EMAIL_CHANGED,
            actor=user,
            ip_address=ip_address,
            details={"before": before, "after": address},
        )
    user.email = address
    return address
