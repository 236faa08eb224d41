"""Every write to a webhook endpoint goes through this module, audited with who did it and what
changed, the secret never among it and the URL only as its destination.

The rules an endpoint must meet (where the dashboard may post, known events, a secret of 16
characters or more) are the model's, run here before anything is written, whichever interface
asked. The audit trail says that the secret was set or changed, never what it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster
from lib.destinations import url_destination
from notifications.models import WebhookEndpoint

Event = AuditEntry.Event
# Recorded by value; the URL, a credential for Slack and Teams, only by its destination.
FIELDS = ("name", "format", "events", "is_active")
UNREADABLE = (
    "The current secret cannot be read: the encryption key (TMS_TOKEN_KEY, or SECRET_KEY it "
    "derives from) changed since it was set. Set a new secret, and give it to the receiver."
)
URL_UNREADABLE = (
    "The current URL cannot be read: the encryption key (TMS_TOKEN_KEY, or SECRET_KEY it "
    "derives from) changed since it was set. Type it again."
)
KEY_UNREADABLE = (
    "The current PagerDuty routing key cannot be read: the encryption key (TMS_TOKEN_KEY, or "
    "SECRET_KEY it derives from) changed since it was set. Type it again."
)


def _secret_state(secret: str | None) -> str:
    return "unreadable" if secret is None else "set"


def _key_state(key: str | None) -> str:
    return "unreadable" if key is None else ("set" if key else "none")


def _cluster_names(endpoint: WebhookEndpoint) -> list[str]:
    # A query of its own each time: never the clusters a list prefetched earlier.
    return list(endpoint.clusters.order_by("name").values_list("name", flat=True))


@sensitive_variables()
def endpoint_save(
    *,
    endpoint: WebhookEndpoint,
    clusters: Iterable[Cluster] | None = None,
    actor=None,
    ip_address: str | None = None,
) -> WebhookEndpoint:
    """Check and save a new or changed endpoint and its clusters (None: keep them as they
    are; empty: every cluster), with its audit entry in the same transaction.

    Raises ValidationError (by field) and writes nothing when the endpoint breaks a rule, or
    when its secret could no longer be read and no new one was given. A new endpoint is
    `webhook.created` with its values; a change `webhook.changed` with the values before and
    after of what changed. The secret and the routing key appear only as markers (`"secret":
    "changed"`, and "set" or "unreadable" before). Saving with nothing changed writes no entry.
    """
    if endpoint.secret is None:
        raise ValidationError({"secret": UNREADABLE}, code="webhook_secret_unreadable")
    if endpoint.routing_key is None:
        raise ValidationError({"routing_key": KEY_UNREADABLE}, code="webhook_key_unreadable")
    if endpoint.url is None:
        raise ValidationError({"url": URL_UNREADABLE}, code="webhook_url_unreadable")
    endpoint.full_clean()
    with transaction.atomic():
        before = None
        if endpoint.pk is not None:
            before = (
                WebhookEndpoint.objects.select_for_update()
                .filter(pk=endpoint.pk)
                .values(*FIELDS, "url", "secret", "routing_key")
                .first()
            )
        if before is not None:
            before["clusters"] = _cluster_names(endpoint)
        endpoint.save()
        if clusters is not None:
            endpoint.clusters.set(clusters)
        after = {name: getattr(endpoint, name) for name in FIELDS}
        after["clusters"] = _cluster_names(endpoint)
        if before is None:
            created = {
                **after,
                "url": endpoint.url_shown,
                "secret": "set",
                "routing_key": _key_state(endpoint.routing_key),
            }
            event, details = Event.WEBHOOK_CREATED, {"after": created}
        else:
            changed = [name for name in (*FIELDS, "clusters") if before[name] != after[name]]
            secret_changed = before["secret"] != endpoint.secret
            key_changed = before["routing_key"] != endpoint.routing_key
            url_changed = before["url"] != endpoint.url
            if not changed and not secret_changed and not key_changed and not url_changed:
                return endpoint
            details = {
                "before": {name: before[name] for name in changed},
                "after": {name: after[name] for name in changed},
            }
            if url_changed:
                details["before"]["url"] = url_destination(before["url"])
                details["after"]["url"] = "changed, to " + endpoint.url_shown
            if secret_changed:
                details["before"]["secret"] = _secret_state(before["secret"])
                details["after"]["secret"] = "changed"  # noqa: S105 (a marker, not a secret)
            if key_changed:
                details["before"]["routing_key"] = _key_state(before["routing_key"])
                details["after"]["routing_key"] = "changed" if endpoint.routing_key else "none"
            event = Event.WEBHOOK_CHANGED
        audit_record(
            event=event,
            actor=actor,
            ip_address=ip_address,
            details={"endpoint_id": endpoint.pk, "endpoint": str(endpoint), **details},
        )
    return endpoint


def _values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    values = {name: getattr(endpoint, name) for name in FIELDS}
    values["url"] = endpoint.url_shown
    values["clusters"] = _cluster_names(endpoint)
    values["secret"] = _secret_state(endpoint.secret)
    values["routing_key"] = _key_state(endpoint.routing_key)
    return values


def endpoint_delete(
    *, endpoint: WebhookEndpoint, actor=None, ip_address: str | None = None
) -> None:
    """Delete an endpoint that was never sent a notice, audited with every value it had but
    its secret.

    Notice.endpoint protects the others: the delete raises ProtectedError and nothing is
    written, its audit entry included. Such an endpoint is deactivated instead.
    """
    pk, name = endpoint.pk, str(endpoint)
    with transaction.atomic():
        audit_record(
            event=Event.WEBHOOK_DELETED,
            actor=actor,
            ip_address=ip_address,
            details={"endpoint_id": pk, "endpoint": name, "before": _values(endpoint)},
        )
        endpoint.delete()
