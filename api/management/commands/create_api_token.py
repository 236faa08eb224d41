from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.tokens import token_create


class Command(BaseCommand):
    help = (
        "Creates a personal API token for a user and prints it once: it is stored hashed and "
        "cannot be shown again. It acts with the user's permissions; --read-only cannot "
        "submit, retry or cancel; only a token made --can-approve approves or denies approval "
        "requests (as its user may). Audited as created by a maintainer."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="the username the token acts as")
        parser.add_argument("--name", required=True, help="a label, to recognise it later")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="days until it expires (default TMS_API_TOKEN_DAYS; 0: never, where "
            "TMS_API_TOKEN_NEVER_EXPIRES allows it)",
        )
        parser.add_argument("--read-only", action="store_true")
        parser.add_argument(
            "--can-approve",
            action="store_true",
            help="the approve scope: the token may approve or deny approval requests",
        )

    def handle(
        self, *, user: str, name: str, expires_days, read_only: bool, can_approve: bool, **options
    ) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user!r}.")
        try:
            new = token_create(
                user=owner,
                name=name,
                expires_days=expires_days,
                read_only=read_only,
                can_approve=can_approve,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        expiry = new.token.expires_at.isoformat() if new.token.expires_at else "never"
        self.stderr.write(f"Token {new.token.prefix} for {user}, expires {expiry}:")
        self.stdout.write(new.secret)
