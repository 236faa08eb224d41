"""Signing out."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from accounts.services.sessions import provider_session_end


class SignOutView(LogoutView):
    """Django's sign-out, saying so on the sign-in page it lands on. A session made through
    the identity provider is ended there too, when the provider can (RP-initiated logout):
    the browser goes by the provider's sign-out, which sends it back to the sign-in page."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        at_provider = provider_session_end(request.session)
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        if at_provider:
            return HttpResponseRedirect(at_provider)
        return response
