"""Form fields shared by the apps' forms."""

from __future__ import annotations

from django import forms

from lib.numbers import NotANumber, OutOfBounds, whole_number


class ModelChoicesField(forms.ModelMultipleChoiceField):
    """Model choices by id, read by lib.numbers: an id of other digits than ASCII 0-9 is not an
    id, and one too large for the database is an invalid choice like any other id that names
    no choice."""

    def _check_values(self, value):
        for pk in value:
            try:
                whole_number(pk)
            except NotANumber as exc:
                code = "invalid_choice" if isinstance(exc, OutOfBounds) else "invalid_pk_value"
                raise forms.ValidationError(
                    self.error_messages[code], code=code, params={"pk": pk, "value": pk}
                ) from None
        return super()._check_values(value)
