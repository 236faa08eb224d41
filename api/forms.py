"""The form of the API tokens page: it parses input; the rules live in api.tokens."""

from __future__ import annotations

from django import forms
from django.conf import settings

LIFETIMES = (7, 30, 90, 365)
# token_create's way of saying "never expires".
NEVER = 0


def lifetime_choices() -> list[tuple[int, str]]:
    """The lifetimes offered: those the settings allow, with the default among them."""
    days = {d for d in LIFETIMES if d <= settings.TMS_API_TOKEN_MAX_DAYS}
    days.add(settings.TMS_API_TOKEN_DAYS)
    choices = [(d, f"{d} days") for d in sorted(days)]
    if settings.TMS_API_TOKEN_NEVER_EXPIRES:
        choices.append((NEVER, "Never"))
    return choices


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. the script or pipeline that uses it.",
        error_messages={"required": "Give the token a name."},
    )
    expires_days = forms.TypedChoiceField(label="Lifetime", coerce=int)
    read_only = forms.BooleanField(
        label="Read-only",
        required=False,
        help_text="A read-only token cannot submit, retry or cancel.",
    )
    can_approve = forms.BooleanField(
        label="May approve",
        required=False,
        help_text="Only a token created with this approves or denies approval requests, as "
        "its owner may; keep it apart from the tokens that submit.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read when the form is made: the settings decide what is offered.
        self.fields["expires_days"].choices = lifetime_choices()
        self.fields["expires_days"].initial = settings.TMS_API_TOKEN_DAYS
