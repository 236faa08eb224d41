"""Signing in."""

from __future__ import annotations

from django.contrib.auth.views import LoginView
from django.urls import reverse


class SignInView(LoginView):
    """Django's sign-in, landing operators on Set Action and everyone else on the jobs list."""

    def get_default_redirect_url(self) -> str:
        if self.request.user.has_perm("jobs.run_set_action"):
            return reverse("set_action")
        return reverse("job_list")
