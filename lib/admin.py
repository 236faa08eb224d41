"""Admin building blocks for history and for tables of millions of rows, shared by the apps.

Lists are built for tables of millions of rows: 50 rows a page, the paginator counts at most
`CappedCountPaginator.cap` rows instead of the whole table, facets are off, and the date
hierarchy reads the first and last dates instead of every distinct day. Each app's admin still
chooses filters that match an index in the list's order, and which columns may be sorted.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import DateField, Model, QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from lib.numbers import NotANumber, whole_number
from lib.pagination import CappedCountPaginator

# The date parts a list may be filtered by, and the values each may take. A year's query runs
# to the start of the next in the current time zone, so neither end of Python's 1 to 9999.
_DATE_PARTS = {
    "year": (2, 9998),
    "iso_year": (2, 9998),
    "quarter": (1, 4),
    "month": (1, 12),
    "week": (1, 53),
    "day": (1, 31),
}


class CheapDateHierarchyChangeList(ChangeList):
    """A change list whose date hierarchy costs two one-row queries.

    Django's lists the distinct years, months or days of the matching rows, which reads every
    row (a million on the jobs table). This one offers the calendar units between the first
    and the last matching date, so a unit in between may hold no rows.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        self._drop_impossible_dates(request)
        return super().get_queryset(request, exclude_parameters)

    def _drop_impossible_dates(self, request: HttpRequest) -> None:
        """A date drill-down (or a link made by hand) to a year, month or day that Python or
        the database cannot hold shows the list without it and says so. Django computes the
        end of a year when it builds the query, so a year past 9998 failed as a 500."""
        dates = {f.name for f in self.model._meta.concrete_fields if isinstance(f, DateField)}
        for key in list(self.filter_params):
            name, _, lookup = key.partition("__")
            part = lookup.split("__")[0]
            if name not in dates or part not in _DATE_PARTS:
                continue
            low, high = _DATE_PARTS[part]
            try:
                for value in self.filter_params[key]:
                    whole_number(value, minimum=low, maximum=high)
            except NotANumber:
                self._drop(request, key, f"Not a {part} the list can show ({low} to {high})")
        if self.date_hierarchy:
            keys = [f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day")]
            if all(key in self.params for key in keys):
                try:
                    dt.date(*(int(self.params[key]) for key in keys))
                except ValueError:
                    self._drop(request, keys[2], "Not a day of that month")

    def _drop(self, request: HttpRequest, key: str, problem: str) -> None:
        messages.warning(request, f"{problem}: {self.params[key][:30]!r}. The list ignores it.")
        del self.params[key], self.filter_params[key]

    def date_hierarchy_links(self) -> dict[str, Any]:
        name = self.date_hierarchy
        year_field, month_field, day_field = (f"{name}__{p}" for p in ("year", "month", "day"))
        year, month, day = (self.params.get(f) for f in (year_field, month_field, day_field))

        def link(filters: dict[str, Any]) -> str:
            return self.get_query_string(filters, [f"{name}__"])

        if year and month and day:
            date = dt.date(int(year), int(month), int(day))
            return {
                "show": True,
                "back": {
                    "link": link({year_field: year, month_field: month}),
                    "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
                },
                "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
            }
        # Two queries, not one MIN/MAX aggregate: SQLite answers a lone MIN or MAX (or a LIMIT 1)
        # from the end of an index, but reads the whole index for both together.
        dates = self.queryset.values_list(name, flat=True)
        earliest = dates.order_by(name).first()
        if earliest is None:
            return {"show": False}
        latest = dates.order_by(f"-{name}").first()
        first, last = (timezone.localtime(d).date() for d in (earliest, latest))
        if not year and first.year == last.year:
            year = str(first.year)
            if first.month == last.month:
                month = str(first.month)
        if year and month:
            days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
            return {
                "show": True,
                "back": {"link": link({year_field: year}), "title": year},
                "choices": [
                    {
                        "link": link({year_field: year, month_field: month, day_field: d.day}),
                        "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                    }
                    for d in days
                ],
            }
        if year:
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({year_field: year, month_field: m}),
                        "title": capfirst(
                            formats.date_format(dt.date(int(year), m, 1), "YEAR_MONTH_FORMAT")
                        ),
                    }
                    for m in range(first.month, last.month + 1)
                ],
            }
        return {
            "show": True,
            "back": None,
            "choices": [
                {"link": link({year_field: str(y)}), "title": str(y)}
                for y in range(first.year, last.year + 1)
            ],
        }


def json_block(value: Any) -> SafeString:
    """`value` as indented JSON in a <pre>, escaped."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="json-block">{}</pre>', text)


def could_be_a_key(model: type[Model], value: str) -> bool:
    """Whether `value` could be a primary key of `model`'s table: of the key's type, within its
    column's range, and without NUL (which PostgreSQL refuses in any text)."""
    key = model._meta.pk
    try:
        parsed = key.to_python(value)
    except ValidationError:
        return False
    if "\x00" in value or parsed is None:
        return False
    if isinstance(parsed, int):
        connection = connections[router.db_for_read(model)]
        low, high = connection.ops.integer_field_range(key.get_internal_type())
        return (low is None or low <= parsed) and (high is None or parsed <= high)
    return True


class CheckedSelectionMixin:
    """An admin whose bulk actions refuse a selection no row could have.

    Django filters the action's rows by the posted `_selected_action` values as they are, so a
    hand-made one ("²", an id no column holds) was an error page instead of an answer."""

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase | None:
        model = self.model  # type: ignore[attr-defined]
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if not all(could_be_a_key(model, value) for value in selected):
            self.message_user(  # type: ignore[attr-defined]
                request,
                "Nothing was done: the selection names no row of "
                f"{model._meta.verbose_name_plural}.",
                messages.WARNING,
            )
            return None
        return super().response_action(request, queryset)  # type: ignore[misc]


class CheckedModelAdmin(CheckedSelectionMixin, admin.ModelAdmin):
    """The base of every admin here (see CheckedSelectionMixin)."""


class ReadOnlyAdmin(CheckedModelAdmin):
    """History: nobody adds, changes or deletes through the admin, superusers included."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LargeTableAdmin(ReadOnlyAdmin):
    """List settings for tables of millions of rows (see the module docstring)."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # As the operator's jobs list: a page's time is mostly Django rendering its rows' cells
    # (100 rows of a million-job list took 56 ms of CPU, 104-120 ms at the 95th percentile on
    # PostgreSQL), and half as many rows take half as long.
    list_per_page = 50

    class Media:
        css = {"all": ["css/admin.css"]}

    change_list_template = "admin/large_table/change_list.html"

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> CappedCountPaginator:
        return CappedCountPaginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            select_related=self.list_select_related,
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CheapDateHierarchyChangeList


def history_refusal(names: list[str], *, kind: str, history: str) -> str:
    """Why rows that have history (a cluster's jobs, an endpoint's notices) are not deleted,
    and what to do instead: `kind` names one such row ("cluster"), `history` what it has."""
    if len(names) == 1:
        subject, them = f"The {kind} {names[0]} has", "it"
    else:
        subject, them = f"The {kind}s {', '.join(names)} have", "them"
    return (
        f"{subject} {history}, which are history: nothing was deleted. "
        f"Deactivate {them} instead (untick “Is active” and save)."
    )
