"""A task row's changes as the worker makes them, its claim and its end, through a cursor.

django-tasks-db writes them with `save(update_fields=...)` (`DBTaskResult.claim`,
`set_successful`, `set_failed`): each cost the worker 0.3 ms of CPU on SQLite and 0.4-0.56 ms
on PostgreSQL, twice a job, most of it the ORM's building of the UPDATE; the same statement
through a cursor costs 0.08 ms and 0.13-0.2 ms (bench/task_rows.py). `cursor_saves` gives a
task row a `save` that runs the same UPDATE, its text built once per engine and set of fields,
its values adapted by the fields themselves (`get_db_prep_save`), as the ORM's UPDATE adapts
them. As the ORM's does, a save that changes no row (the task was deleted meanwhile) raises
DatabaseError. No model signal is sent: the one receiver of task rows
(ops.receivers.wake_on_enqueue) acts on their creation only, which is never a save of these.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.db import DatabaseError, connection
from django_tasks_db.models import DBTaskResult


def cursor_saves(task: DBTaskResult) -> None:
    """Make `task.save(update_fields=...)`, which django-tasks-db's claim and end call, an
    UPDATE through a cursor. A save without update_fields is refused: the library never makes
    one of a task it runs."""

    def save(*, update_fields: Iterable[str]) -> None:
        save_fields(task, tuple(update_fields))

    task.save = save


def save_fields(task: DBTaskResult, fields: tuple[str, ...]) -> None:
    """Write `fields` of `task` to its row; DatabaseError if there is no row."""
    meta = DBTaskResult._meta
    params = [
        meta.get_field(name).get_db_prep_save(
            getattr(task, meta.get_field(name).attname), connection
        )
        for name in fields
    ]
    params.append(meta.pk.get_db_prep_value(task.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(connection.vendor, fields), params)
        if cursor.rowcount == 0:
            raise DatabaseError("Save with update_fields did not affect any rows.")


@functools.cache
def _update_sql(vendor: str, fields: tuple[str, ...]) -> str:
    """`save_fields`' UPDATE (`vendor` keys the cache: the quoting is the connection's)."""
    quote = connection.ops.quote_name
    meta = DBTaskResult._meta
    columns = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    return (
        f"UPDATE {quote(meta.db_table)} SET {columns} "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s"
    )
