from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services.sessions import user_deactivate


class Command(BaseCommand):
    help = (
        "Deactivates a user who will not come back: their personal API tokens stop at once, "
        "every session of theirs ends at its next request, and signing in through the identity "
        "provider no longer makes them active again (an admin can, in the admin). Audited."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="the dashboard username")

    def handle(self, *, username: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}: nothing was changed.")
        if not user.is_active:
            self.stdout.write(f"{username} was already inactive; provider sessions ended again.")
        ended = user_deactivate(user, by="manage.py deactivate_user")
        self.stdout.write(
            f"{username} is deactivated: API tokens refused, sessions ended "
            f"({ended} through the identity provider)."
        )
