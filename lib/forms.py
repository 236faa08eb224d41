"""Form fields shared by the apps' forms."""

from __future__ import annotations

from datetime import date, datetime, time

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

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


def day_range_error(start: date | None, end: date | None, what: str) -> str | None:
    """What is wrong with a From/To pair of days, or None: "To" before "From" matches no
    `what` ("entry", "job")."""
    if start and end and start > end:
        return f"“To” ({end:%Y-%m-%d}) is before “From” ({start:%Y-%m-%d}): no {what} could match."
    return None


def created_on_days(rows: QuerySet, start: date | None, end: date | None) -> QuerySet:
    """The rows created from the first moment of `start` to the last of `end`, whole days in
    the current time zone; either may be None (no bound)."""
    zone = timezone.get_current_timezone()
    if start:
        rows = rows.filter(created_at__gte=datetime.combine(start, time.min, zone))
    if end:
        rows = rows.filter(created_at__lte=datetime.combine(end, time.max, zone))
    return rows
