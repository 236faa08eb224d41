"""Pagination for tables of millions of rows, shared by the operator UI and the admin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Value
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """A paginator for tables of millions: a bounded count, and a page read by its ids first.

    It counts at most `cap` matching rows, so that no page load costs a full COUNT(*). Beyond
    the cap the list shows "more than 10,000" and its first 10,000 rows; filters, search and
    the date hierarchy narrow it further.

    A page is read in two steps: the ids of its rows, from the list's table alone, then those
    rows by id with `select_related` joined. Asked for both at once, SQLite sorts every matching
    row before it keeps a page of them (tens of milliseconds per 100,000 matches); asked for
    the ids alone, it reads one page from an index.
    """

    cap = 10_000

    def __init__(
        self, *args: Any, select_related: Sequence[str] | bool = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.select_related = select_related

    def page(self, number: int | str) -> Page:
        page = super().page(number)
        ids = list(page.object_list.values_list("pk", flat=True))
        rows = self.object_list.model._default_manager.all()
        if self.select_related is True:
            rows = rows.select_related()
        elif self.select_related:
            rows = rows.select_related(*self.select_related)
        by_id = rows.in_bulk(ids)
        page.object_list = [by_id[pk] for pk in ids if pk in by_id]
        return page

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.cap)

    @cached_property
    def capped(self) -> bool:
        return self._counted > self.cap

    @cached_property
    def _counted(self) -> int:
        rows = self.object_list.order_by()
        # The matches counted select a constant, not their ids: an index holding every
        # filtered column then answers alone, where selecting the id would read each match's
        # row (SQLite's indexes point to rows by rowid, not by the UUID primary key). A
        # DISTINCT list keeps its ids, which are what makes its rows distinct.
        if rows.query.distinct:
            return rows.values("pk")[: self.cap + 1].count()
        # aggregate(), not count(): count() leaves the constant out of the subquery, and
        # Django 5.2 then writes "SELECT FROM".
        matches = rows.values(one=Value(1))[: self.cap + 1]
        return matches.aggregate(n=Count("one"))["n"]
