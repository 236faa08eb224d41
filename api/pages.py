"""The API tokens page: a signed-in user creates, lists and revokes their own tokens.

A new token's secret exists only in the answer to the POST that created it: it goes in no
session, message or redirect, and that answer is never cached.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from api.forms import ApiTokenForm
from api.tokens import token_create, token_revoke
from audit.services import client_ip


class ShownSecret(str):
    """A new token on its way to the page. Error reports print the locals of every frame of
    a crash, the template's context among them, with repr(): that hides it."""

    def __repr__(self) -> str:
        return "'<the new API token>'"


def _page(
    request: HttpRequest,
    form: ApiTokenForm,
    *,
    secret: ShownSecret | None = None,
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    tokens = [(token, token.state(now)) for token in request.user.api_tokens.all()]
    context = {"form": form, "tokens": tokens, "secret": secret}
    return render(request, "api/tokens.html", context, status=status)


@never_cache
@login_required
# Innermost: Django hides the locals of the function this decorator wraps directly.
@sensitive_variables("new")
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The list of the user's tokens and the form to create one; the answer to a successful
    POST shows the new token, the one time it is shown."""
    if request.method != "POST":
        return _page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            new = token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_days=form.cleaned_data["expires_days"],
                read_only=form.cleaned_data["read_only"],
                actor=request.user,
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            # The form's fields bear the service's argument names.
            form.add_error(None, exc)
        else:
            return _page(request, ApiTokenForm(), secret=ShownSecret(new.secret))
    return _page(request, form, status=400)


@never_cache
@login_required
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Among the user's own only: anyone else's token is not found (a superuser revokes those
    # from the admin).
    token = get_object_or_404(request.user.api_tokens, pk=pk)
    if token_revoke(token=token, actor=request.user, ip_address=client_ip(request)):
        messages.success(request, f"Token “{token.name}” ({token.prefix}) revoked.")
    else:
        messages.info(request, f"Token “{token.name}” ({token.prefix}) was already revoked.")
    return redirect("api_tokens")
