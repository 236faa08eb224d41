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

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from lib.pagination import CappedCountPaginator


class CheapDateHierarchyChangeList(ChangeList):
    """A change list whose date hierarchy costs two one-row queries.

    Django's lists the distinct years, months or days of the matching rows, which reads every
    row (a million on the jobs table). This one offers the calendar units between the first
    and the last matching date, so a unit in between may hold no rows.
    """

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


class ReadOnlyAdmin(admin.ModelAdmin):
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
