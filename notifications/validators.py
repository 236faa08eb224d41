"""The rules for a webhook endpoint: the cluster endpoints' rules for where the dashboard may
post (jobs.validators), and known event names."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from jobs.validators import UrlRules, validate_http_url
from notifications.event_names import EventName

WEBHOOK_URL_RULES = UrlRules(
    label="The URL",
    kind="webhook endpoints",
    code="webhook_url",
    hosts_setting="TMS_ALLOWED_WEBHOOK_HOSTS",
    userinfo_hint="admins see it in the admin. The secret authenticates the dashboard.",
    query_allowed=True,
)


def validate_webhook_url(value: str) -> None:
    validate_http_url(value, WEBHOOK_URL_RULES)


def validate_event_names(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("Give the events as a list of names.", code="webhook_events")
    unknown = sorted(set(value) - set(EventName.values))
    if unknown:
        raise ValidationError(
            "Unknown event(s): %(unknown)s. Choose from %(known)s.",
            code="webhook_events",
            params={"unknown": ", ".join(unknown), "known": ", ".join(EventName.values)},
        )
    if not value:
        raise ValidationError("Choose at least one event.", code="webhook_events")
