"""Security headers on every answer, and sessions that end when their user walks away."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse

from accounts.services.sessions import provider_session_renew
from audit.services import client_ip
from tmsdash.views import API

# Browser features no page of the dashboard uses, refused to its pages and to anything they
# embed. Copying a token or an ID writes to the clipboard, so that one is kept for our origin.
# Every name is one Chromium knows: an unknown one only logs a warning in the browser's console.
PERMISSIONS_POLICY = ", ".join(
    [
        *(
            f"{feature}=()"
            for feature in (
                "accelerometer",
                "autoplay",
                "browsing-topics",
                "camera",
                "display-capture",
                "encrypted-media",
                "fullscreen",
                "geolocation",
                "gyroscope",
                "hid",
                "idle-detection",
                "local-fonts",
                "magnetometer",
                "microphone",
                "midi",
                "payment",
                "picture-in-picture",
                "publickey-credentials-get",
                "screen-wake-lock",
                "serial",
                "usb",
                "xr-spatial-tracking",
            )
        ),
        "clipboard-write=(self)",
    ]
)


class SecurityHeadersMiddleware:
    """A Permissions-Policy on every answer, and `Cache-Control: no-store` on every answer of
    the API, its errors and its schema included: they carry jobs, tokens' names and customer
    IDs that no shared cache or browser history should keep.

    It sits near the top of MIDDLEWARE, so that answers made by the middleware below it (a
    refused NUL, a database that failed) get the headers too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["Permissions-Policy"] = PERMISSIONS_POLICY
        if request.path.startswith(API):
            response["Cache-Control"] = "no-store"
        return response


# The time (seconds since the epoch) of the session's last request made by its user, recorded
# at most once a minute (a tenth of the idle timeout if that is shorter), so that a user reading
# pages does not write the session at every click: a session may end up to that much sooner.
LAST_ACTIVITY = "tmsdash_last_activity"


def session_start(sender: type, request: HttpRequest, user: object, **kwargs: object) -> None:
    """On sign-in (user_logged_in, connected in tmsdash.apps): the session's lifetime starts,
    as does its idle clock."""
    now = int(time.time())
    request.session.set_expiry(
        datetime.datetime.fromtimestamp(now + settings.TMS_SESSION_LIFETIME, datetime.UTC)
    )
    request.session[LAST_ACTIVITY] = now


class SessionTimeoutMiddleware:
    """A signed-in session ends TMS_SESSION_IDLE_TIMEOUT seconds after its user's last request,
    and TMS_SESSION_LIFETIME seconds after sign-in whatever the user does.

    The lifetime is the session's own expiry, fixed at sign-in (session_start), so that Django
    refuses the session (and its cookie lapses) at that time. The idle timeout is checked here,
    on every request. The live regions' background requests (htmx) keep a page current, not its
    user present: they do not count as activity, or a job page left open would never be signed
    out. The API signs in by token, never by session: its requests are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API) or not request.user.is_authenticated:
            return self.get_response(request)
        now = int(time.time())
        session = request.session
        idle = settings.TMS_SESSION_IDLE_TIMEOUT
        last = session.get(LAST_ACTIVITY)
        if last is None:
            # Signed in before this middleware was installed: the lifetime starts now.
            session_start(None, request, request.user)
        elif now - last > idle:
            session.flush()
            request.user = AnonymousUser()
            messages.info(request, f"You were signed out after {_duration(idle)} without activity.")
        elif not request.htmx and now - last >= min(60, idle // 10):
            session[LAST_ACTIVITY] = now
        return self.get_response(request)


class ProviderSessionMiddleware:
    """A session made through the identity provider is renewed with it every
    OIDC_RENEW_SECONDS, at its user's next request, the live regions' included (accounts.
    services.sessions): when the provider no longer agrees, that request is already signed out
    and says why. The API's requests sign in by token and are left alone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API) or not request.user.is_authenticated:
            return self.get_response(request)
        renewal = provider_session_renew(request.session, client_ip(request))
        if renewal.ended:
            request.session.flush()
            request.user = AnonymousUser()
            messages.info(request, renewal.reason)
        return self.get_response(request)


def _duration(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
