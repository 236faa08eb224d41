"""The API's one way of paging: opaque cursors, newest first, no total count.

A cursor stays right while new jobs arrive (an offset would repeat or skip rows), and a page
costs the same at the millionth job as at the first: it reads from the cursor's place in the
ordering's index, where an offset reads and drops every row before it, and a count reads all.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from lib.numbers import NotANumber, whole_number


class NewestFirst(CursorPagination):
    """By creation, newest first; the id orders rows created in the same microsecond."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        """`page_size` from 1 to max_page_size: anything else is a 400, not silently the
        default."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        try:
            return whole_number(value, minimum=1, maximum=self.max_page_size)
        except NotANumber:
            raise ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            ) from None

    def decode_cursor(self, request):
        """A cursor this API did not hand out is a bad request (DRF answers 404)."""
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError(
                {self.cursor_query_param: ["Not a cursor from this API: use a page's next link."]}
            ) from exc


class InOrder(NewestFirst):
    """A job's customers in the order they were submitted."""

    ordering = ("id",)
