"""Rotating TMS_TOKEN_KEY: every stored secret re-encrypted with the key that now encrypts.

TMS_TOKEN_KEY holds the new key first and the old ones after it (jobs.tokens): each decrypts,
the first encrypts. `token_key_rotate` rewrites each secret that another key encrypted with
the first, so that the old keys can then be dropped; docs/credentials.md has the procedure.
The secrets: clusters' stored credentials, the tokens of jobs not yet ended, and webhook
endpoints' URLs, signing secrets and PagerDuty routing keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, models, transaction

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ClusterCredential, JobToken
from jobs.tokens import InvalidToken, token_key_first, token_reencrypt
from lib.chunks import batched
from notifications.models import WebhookEndpoint

# What is encrypted with TMS_TOKEN_KEY: a name for the report, the model and its column.
SECRETS = (
    ("cluster credentials", ClusterCredential, "ciphertext"),
    ("job tokens", JobToken, "ciphertext"),
    ("webhook secrets", WebhookEndpoint, "secret"),
    ("webhook URLs", WebhookEndpoint, "url"),
    ("webhook routing keys", WebhookEndpoint, "routing_key"),
)
BATCH = 500


@dataclass
class Rotated:
    """One kind of secret after a rotation: how many were re-encrypted with the first key,
    how many it encrypted already, and how many no key of TMS_TOKEN_KEY decrypts (left as
    they are: set them again, or add the key that made them)."""

    name: str
    rotated: int = 0
    current: int = 0
    unreadable: int = 0


def _rows(model: type[models.Model], field: str) -> list[tuple[object, str]]:
    """Each row's primary key and ciphertext as stored: read in SQL, since the webhook
    secret's field decrypts as it reads."""
    quote = connection.ops.quote_name
    meta = model._meta
    column = quote(meta.get_field(field).column)
    with connection.cursor() as cursor:
        # Only names from the models are formatted in.
        cursor.execute(
            f"SELECT {quote(meta.pk.column)}, {column} FROM {quote(meta.db_table)} "  # noqa: S608
            f"WHERE {column} IS NOT NULL AND {column} <> ''"
        )
        return cursor.fetchall()


def _write(model: type[models.Model], field: str, changes: list[tuple[object, str, str]]) -> int:
    """Store each new ciphertext where its row still holds the old one (a secret set again
    meanwhile stands); returns how many were written. Primary keys as `_rows` read them."""
    quote = connection.ops.quote_name
    meta = model._meta
    column = quote(meta.get_field(field).column)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {column} = %s "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s AND {column} = %s"
    )
    written = 0
    with connection.cursor() as cursor:
        for pk, old, new in changes:
            cursor.execute(sql, [new, pk, old])
            written += cursor.rowcount
    return written


def token_key_rotate(*, dry_run: bool = False) -> list[Rotated]:
    """Re-encrypt with TMS_TOKEN_KEY's first key every stored secret another of its keys
    encrypted, one batch of rows per transaction, audited (token_key.rotated, with the
    counts) unless nothing changed. Safe to run twice (the second run finds every secret
    current) and while the dashboard runs (a row changed meanwhile is left to its writer).
    With `dry_run`, counts and writes nothing."""
    report = []
    for name, model, field in SECRETS:
        counts = Rotated(name)
        for batch in batched(_rows(model, field), BATCH):
            changes = []
            for pk, ciphertext in batch:
                if token_key_first(ciphertext):
                    counts.current += 1
                    continue
                try:
                    changes.append((pk, ciphertext, token_reencrypt(ciphertext)))
                except InvalidToken:
                    counts.unreadable += 1
            if dry_run:
                counts.rotated += len(changes)
                continue
            with transaction.atomic():
                counts.rotated += _write(model, field, changes)
        report.append(counts)
    if not dry_run and any(counts.rotated for counts in report):
        audit_record(
            event=AuditEntry.Event.TOKEN_KEY_ROTATED,
            details={
                counts.name: {
                    "rotated": counts.rotated,
                    "current": counts.current,
                    "unreadable": counts.unreadable,
                }
                for counts in report
            },
        )
    return report
