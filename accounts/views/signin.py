"""Signing in: through the company's provider when it is configured, with a password for
everyone while TMS_LOCAL_SIGNIN is true and for the break-glass users only after."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.urls import reverse


class SignInForm(AuthenticationForm):
    """Django's sign-in form. With password sign-in off, a failure says so, in the same words
    for a refused username, a break-glass user's wrong password and a username nobody has:
    the page tells nobody which accounts exist or are break-glass ones."""

    def get_invalid_login_error(self) -> ValidationError:
        if settings.TMS_LOCAL_SIGNIN:
            return super().get_invalid_login_error()
        where = f": sign in with {settings.OIDC_PROVIDER_NAME}" if settings.OIDC_ENABLED else ""
        return ValidationError(
            f"Password sign-in is off{where}. It is kept for break-glass accounts only: if "
            "yours is one, the username or password is wrong.",
            code="local_signin_off",
        )


def landing_url(user) -> str:
    """Where a sign-in lands without a ?next=: the Overview for those who may see every job
    (auditors, admins), Set Action for operators, the jobs list for everyone else."""
    if user.has_perm("jobs.view_all_jobs"):
        return reverse("overview")
    if user.has_perm("jobs.run_set_action"):
        return reverse("set_action")
    return reverse("job_list")


class SignInView(LoginView):
    """Django's sign-in, landing each user where landing_url says."""

    authentication_form = SignInForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["local_signin"] = settings.TMS_LOCAL_SIGNIN
        if settings.OIDC_ENABLED:
            url = reverse("oidc_login")
            if next_url := context.get(self.redirect_field_name):
                url += "?" + urlencode({self.redirect_field_name: next_url})
            context["oidc_login_url"] = url
            context["oidc_provider_name"] = settings.OIDC_PROVIDER_NAME
        return context

    def get_default_redirect_url(self) -> str:
        return landing_url(self.request.user)
