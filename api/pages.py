"""The API tokens page: a signed-in user creates, lists and revokes their own tokens.

A new token's secret exists only in the answer to the POST that created it: it goes in no
session, message or redirect, and that answer is never cached.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from api.forms import ApiTokenForm
from api.tokens import token_create, token_revoke
from audit.services import client_ip

# More than the default TMS_API_TOKENS_PER_USER: a user's live tokens fit on the first page
# unless ended ones are newer.
TOKENS_PER_PAGE = 25


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
    # Newest first; the pk breaks ties of tokens made in the same instant, so that no token is
    # shown on two pages or on none.
    rows = request.user.api_tokens.order_by("-created_at", "-pk")
    page = Paginator(rows, TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "tokens": [(token, token.state(now)) for token in page],
        "live": request.user.api_tokens.usable(now).count(),
        "limit": settings.TMS_API_TOKENS_PER_USER,
        "secret": secret,
    }
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
                can_approve=form.cleaned_data["can_approve"],
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
    # Back to the page of the list the token was on; the list reads the number itself.
    page = request.GET.get("page", "")
    back = reverse("api_tokens")
    return redirect(f"{back}?{urlencode({'page': page})}" if page else back)
