"""Signing out."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse


class SignOutView(LogoutView):
    """Django's sign-out, saying so on the sign-in page it lands on."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response
