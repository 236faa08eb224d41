"""The audit log page's filters, and an entry's details as the page and the export show them.

Here in ops, not in audit: the customer filter reads which jobs had the customer
(jobs.JobCustomer), and audit depends on no product app (tests/test_layout.py).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db.models import QuerySet

from audit.models import AuditEntry
from jobs.models import JobCustomer
from lib.forms import created_on_days, day_range_error


class AuditFilterForm(forms.Form):
    """Every filter is an equality or a range on an indexed column, in the page's
    newest-first order (migration 0015 of audit)."""

    event = forms.ChoiceField(
        choices=[("", "Any event"), *AuditEntry.Event.choices], required=False
    )
    actor = forms.CharField(
        required=False, max_length=150, label="Actor", help_text="A username, exactly."
    )
    job = forms.UUIDField(required=False, label="Job id", help_text="The whole id.")
    customer = forms.CharField(
        required=False,
        max_length=64,
        label="Customer ID",
        help_text="Entries about the jobs that had this customer.",
    )
    created_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )
    created_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To"
    )

    def clean(self) -> dict:
        data = super().clean()
        problem = day_range_error(data.get("created_from"), data.get("created_to"), "entry")
        if problem:
            self.add_error("created_to", problem)
        return data

    def filter(self, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        """The entries that match every filter given (dates are whole days in TIME_ZONE, as in
        the jobs list)."""
        data = self.cleaned_data
        if data.get("event"):
            entries = entries.filter(event=data["event"])
        if data.get("actor"):
            entries = entries.filter(actor_username=data["actor"])
        if data.get("job"):
            entries = entries.filter(job_id=data["job"])
        if data.get("customer"):
            jobs = JobCustomer.objects.filter(cid=data["customer"]).values("job_id")
            entries = entries.filter(job_id__in=jobs)
        return created_on_days(entries, data.get("created_from"), data.get("created_to"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def changes(details: dict) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field of an entry's "before" and "after" values, in
    order; empty when it has neither."""
    before = details.get("before") if isinstance(details.get("before"), dict) else {}
    after = details.get("after") if isinstance(details.get("after"), dict) else {}
    names = [*before, *(name for name in after if name not in before)]
    return [
        (
            name,
            _text(before[name]) if name in before else "—",
            _text(after[name]) if name in after else "—",
        )
        for name in names
    ]


def other_details(details: dict) -> list[tuple[str, str]]:
    """An entry's details besides its before and after values, as (name, text)."""
    return [
        (key, _text(value))
        for key, value in details.items()
        if not (key in ("before", "after") and isinstance(value, dict))
    ]
