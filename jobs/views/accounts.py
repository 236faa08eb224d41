"""Signing in and out."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.urls import reverse


class SignInView(LoginView):
    """Django's sign-in, landing operators on Set Action and everyone else on the jobs list."""

    def get_default_redirect_url(self) -> str:
        if self.request.user.has_perm("jobs.run_set_action"):
            return reverse("set_action")
        return reverse("job_list")


class SignOutView(LogoutView):
    """Django's sign-out, saying so on the sign-in page it lands on."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response
