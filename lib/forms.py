"""Form fields shared by the apps' forms."""

from __future__ import annotations

from django import forms

# The largest primary key either database stores: a larger number names no row, and SQLite
# cannot even be asked about it (OverflowError).
LARGEST_ID = 2**63 - 1


class ModelChoicesField(forms.ModelMultipleChoiceField):
    """Model choices by id, where an id too large for the database is an invalid choice like
    any other id that names no choice."""

    def _check_values(self, value):
        for pk in value:
            if str(pk).isdigit() and int(pk) > LARGEST_ID:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return super()._check_values(value)
