"""Signing in through the company's identity provider: off to the provider, and back."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from accounts.services.identities import SignInRefused, identity_sign_in
from accounts.services.provider import (
    ProviderError,
    ProviderUnreachable,
    provider_call,
    provider_client,
)
from accounts.services.refusals import signin_refusal_record
from accounts.services.sessions import provider_session_start
from accounts.views.signin import landing_url
from audit.services import client_ip

# Where to land after the provider sent the user back (the sign-in page's ?next=).
NEXT = "tmsdash_oidc_next"
# Errors a provider sends back instead of a code, in words; the code alone is read from the
# address (anyone can write an error description into it).
PROVIDER_ERRORS = {
    "access_denied": "the identity provider refused the sign-in, or it was cancelled there",
    "login_required": "the identity provider asked you to sign in again",
    "consent_required": "the identity provider needs your consent for this dashboard",
    "temporarily_unavailable": "the identity provider is unavailable for a moment",
}
UNREACHABLE = "the identity provider could not be reached: try again in a moment"


def _enabled() -> None:
    if not settings.OIDC_ENABLED:
        raise Http404("Company sign-in is not configured.")


def callback_url() -> str:
    return settings.TMS_PUBLIC_URL + reverse("oidc_callback")


class ProviderSignInView(View):
    """To the provider's sign-in (code flow with PKCE, state and nonce)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        _enabled()
        target = request.GET.get("next", "")
        if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            request.session[NEXT] = target
        else:
            request.session.pop(NEXT, None)
        try:
            return provider_client().authorize_redirect(request, callback_url())
        except ProviderUnreachable:
            return refused(request, UNREACHABLE, status=502)
        except ProviderError as exc:
            return refused(request, exc.reason, status=502)


class ProviderCallbackView(View):
    """Back from the provider: the code exchanged, the ID token checked, the person found by
    issuer and subject and given their mapped groups, and signed in."""

    def get(self, request: HttpRequest) -> HttpResponse:
        _enabled()
        ip_address = client_ip(request)
        error = request.GET.get("error")
        if error is not None:
            code = error if re.fullmatch(r"[a-z_]{1,40}", error) else "unknown"
            reason = PROVIDER_ERRORS.get(code, f"the identity provider answered {code}")
            signin_refusal_record(reason, ip_address)
            return refused(request, reason)
        try:
            client = provider_client()
            token = provider_call(client.authorize_access_token, request)
        except ProviderUnreachable:
            return refused(request, UNREACHABLE, status=502)
        except ProviderError as exc:
            reason = (
                "this sign-in was already used or has expired: start again"
                if exc.code == "mismatching_state"
                else exc.reason
            )
            signin_refusal_record(reason, ip_address)
            return refused(request, reason)
        if "userinfo" not in token:
            reason = "the identity provider sent no identity token"
            signin_refusal_record(reason, ip_address)
            return refused(request, reason)
        try:
            user = identity_sign_in(token["userinfo"], ip_address=ip_address)
        except SignInRefused as exc:
            return refused(request, exc.reason)
        target = request.session.pop(NEXT, "")
        login(request, user, backend="accounts.provider_backend.ProviderBackend")
        provider_session_start(request.session, user, token)
        return HttpResponseRedirect(target or landing_url(user))


def refused(request: HttpRequest, reason: str, *, status: int = 403) -> HttpResponse:
    """The page that says why nobody was signed in; never a token, a code or a secret."""
    return render(
        request,
        "accounts/signin_refused.html",
        {"reason": reason, "provider_name": settings.OIDC_PROVIDER_NAME},
        status=status,
    )
