"""Keyset pages, newest first: a page starts where the one before ended, not at an offset.

A page costs the same at the millionth row as at the first (it seeks in the ordering's index to
the cursor, where an offset reads and drops every row before it), and new rows arriving while
someone pages do not shift what the next page shows. The order is (`field`, pk) descending; the
pk orders rows of the same moment. A cursor is "<microseconds since the epoch>_<pk>", so it
survives a URL as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from lib.admin import could_be_a_key


class BadCursor(ValueError):
    """A cursor this page did not hand out."""


@dataclass(frozen=True)
class KeysetPage:
    rows: list[Any]
    # The cursors of the pages either side, None at either end.
    newer: str | None
    older: str | None


def _cursor(row: Any, field: str) -> str:
    moment = getattr(row, field).astimezone(dt.UTC)
    micros = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return f"{micros}_{row.pk}"


def _parse(cursor: str, rows: QuerySet) -> tuple[dt.datetime, Any]:
    micros, _, pk = cursor.partition("_")
    wrong = BadCursor("Not a page of this list: use its Newer and Older links.")
    # could_be_a_key also keeps out a key beyond its column's range, which the database refuses.
    if not (micros.isascii() and micros.isdigit()) or not could_be_a_key(rows.model, pk):
        raise wrong
    try:
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(micros))
    except OverflowError:
        raise wrong from None
    return moment, rows.model._meta.pk.to_python(pk)


def keyset_page(
    rows: QuerySet,
    *,
    size: int,
    older: str | None = None,
    newer: str | None = None,
    field: str = "created_at",
) -> KeysetPage:
    """The page of `rows` after cursor `older` (older rows), or before cursor `newer`, or the
    newest page when neither is given. Raises BadCursor for a cursor it did not hand out."""
    if newer:
        moment, key = _parse(newer, rows)
        # `field` >= moment is what the index seeks to; the rest drops the cursor's own moment's
        # rows that are not after it.
        found = list(
            rows.filter(
                Q(**{f"{field}__gt": moment}) | Q(pk__gt=key), **{f"{field}__gte": moment}
            ).order_by(field, "pk")[: size + 1]
        )
        more = len(found) > size
        page = found[:size][::-1]
        return KeysetPage(
            page,
            newer=_cursor(page[0], field) if more else None,
            older=_cursor(page[-1], field) if page else None,
        )
    ordered = rows.order_by(f"-{field}", "-pk")
    if older:
        moment, key = _parse(older, rows)
        ordered = ordered.filter(
            Q(**{f"{field}__lt": moment}) | Q(pk__lt=key), **{f"{field}__lte": moment}
        )
    found = list(ordered[: size + 1])
    page = found[:size]
    return KeysetPage(
        page,
        newer=_cursor(page[0], field) if older and page else None,
        older=_cursor(page[-1], field) if len(found) > size else None,
    )
