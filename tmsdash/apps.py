"""The project's own app: what must be wired up once, when Django starts."""

from __future__ import annotations

from django.apps import AppConfig


class TmsdashConfig(AppConfig):
    name = "tmsdash"
    verbose_name = "TMS Dashboard"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from tmsdash.security import session_start

        user_logged_in.connect(session_start, dispatch_uid="tmsdash_session_start")
