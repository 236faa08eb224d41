"""The admin's form of a webhook endpoint, and what it says of a test message.

The secret and PagerDuty's routing key are write-only: typed into password boxes never filled
back in.
"""

from __future__ import annotations

from typing import Any

from django import forms

from lib.forms import ModelChoicesField
from notifications.endpoint_test import TestAnswer
from notifications.endpoints import KEY_UNREADABLE, UNREADABLE, URL_UNREADABLE
from notifications.models import EventName, WebhookEndpoint

SIGNING_HELP = (
    "Signs every notice (HMAC-SHA256); give the receiver the same secret. At least 16 "
    "characters: use 32 or more random ones, for example the output of "
    "<code>python3 -c 'import secrets; print(secrets.token_urlsafe(32))'</code> or "
    "<code>openssl rand -hex 32</code>. It is never shown again, here or anywhere."
)
KEEP_HELP = "Leave blank to keep the current secret. A new one: " + SIGNING_HELP
ROUTING_HELP = (
    "PagerDuty endpoints only: the integration key of an Events API v2 integration. Stored "
    "encrypted, never shown again."
)
ROUTING_KEEP_HELP = "Leave blank to keep the current key. " + ROUTING_HELP
URL_HELP = (
    "Where notices are posted. A Slack or Teams incoming webhook's URL is its credential: it "
    "is stored encrypted and never shown again, only its host."
)


class WriteOnlyURLInput(forms.URLInput):
    """A URL box never filled in, neither with the stored URL nor with what was typed."""

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        return super().get_context(name, None, attrs)


class KeptURLField(forms.CharField):
    """Blank keeps the stored URL: changed only when another one is typed."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(data and data.strip()) and data.strip() != (initial or "")


class WebhookEndpointForm(forms.ModelForm):
    # Declared here, not taken from the model: boxes never filled back in.
    url = KeptURLField(
        label="URL",
        required=False,
        widget=WriteOnlyURLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    secret = forms.CharField(
        label="Secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    routing_key = forms.CharField(
        label="PagerDuty routing key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=EventName.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )

    class Meta:
        model = WebhookEndpoint
        fields = (
            "name",
            "url",
            "format",
            "secret",
            "routing_key",
            "events",
            "clusters",
            "is_active",
        )
        widgets = {"clusters": forms.CheckboxSelectMultiple}
        field_classes = {"clusters": ModelChoicesField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Not even the form's initial data holds the secret; and so an empty box counts as
        # unchanged in the admin's history.
        self.initial.pop("secret", None)
        self.initial.pop("routing_key", None)
        url = self.fields["url"]
        if self.instance.pk is None or self.instance.url is None:
            url.required = True
            url.help_text = URL_HELP
            if self.instance.pk is not None:
                url.error_messages["required"] = URL_UNREADABLE
        else:
            url.help_text = (
                f"Leave blank to keep the current URL (to {self.instance.url_shown}). " + URL_HELP
            )
        has_key = self.instance.pk is not None and self.instance.routing_key != ""
        self.fields["routing_key"].help_text = ROUTING_KEEP_HELP if has_key else ROUTING_HELP
        secret = self.fields["secret"]
        if self.instance.pk is None:
            secret.required = True
            secret.help_text = SIGNING_HELP
        elif self.instance.secret is None:
            secret.required = True
            secret.error_messages["required"] = UNREADABLE
            secret.help_text = SIGNING_HELP
        else:
            secret.help_text = KEEP_HELP

    def clean_url(self) -> str | None:
        # Blank on a change keeps the URL the endpoint has.
        return self.cleaned_data["url"].strip() or self.instance.url

    def clean_secret(self) -> str | None:
        # Blank on a change keeps the secret the endpoint has.
        return self.cleaned_data["secret"] or self.instance.secret

    def clean_routing_key(self) -> str | None:
        # Blank keeps the key the endpoint has, while it stays a PagerDuty endpoint; the
        # model's rules then ask for one, or refuse one, by format.
        typed = self.cleaned_data["routing_key"]
        if typed or self.cleaned_data.get("format") != WebhookEndpoint.Format.PAGERDUTY:
            return typed
        if self.instance.routing_key is None:
            raise forms.ValidationError(KEY_UNREADABLE, code="webhook_key_unreadable")
        return self.instance.routing_key

    def clean_events(self) -> list[str]:
        # In the order of EventName, so that the same choice is always the same list.
        chosen = set(self.cleaned_data["events"])
        return [name for name in EventName.values if name in chosen]


def test_message(result: TestAnswer) -> str:
    """What the admin is told of a test message: the HTTP status and the beginning of the
    answer, or why no answer came."""
    if result.ok:
        said = f"Test message delivered: the endpoint answered HTTP {result.http_status}."
    elif result.http_status is not None:
        said = f"Test message not delivered: the endpoint answered HTTP {result.http_status}."
        if result.error != f"HTTP {result.http_status}":
            said += f" {result.error}."
    else:
        said = f"Test message not delivered: {result.error.rstrip('.')}."
    if result.answer.strip():
        said += f" Its answer began: “{result.answer.strip()}”"
    return said
