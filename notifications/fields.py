"""A text field kept encrypted in the database: a webhook endpoint's signing secret."""

from __future__ import annotations

from django.db import models

from jobs.tokens import InvalidToken, token_decrypt, token_encrypt


class EncryptedSecretField(models.TextField):
    """Holds a secret in clear in Python and encrypted (jobs.tokens, TMS_TOKEN_KEY) in the
    database, so that a dump of the database does not give it away. Read back after the key
    changed, it is None: the secret must be set again."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return token_decrypt(value)
        except InvalidToken:
            return None

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return token_encrypt(value) if value else value
