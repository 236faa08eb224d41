"""Inserting many rows of one model fast, with one executemany and no model instances."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

# Field types whose Python values the database drivers take as they are; the others (UUID,
# datetime, JSON) go through the field's own conversion for the database in use.
_PLAIN_TYPES = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}


def _converter(
    model_field: models.Field, db: BaseDatabaseWrapper, converted: dict[Any, Any]
) -> Callable[[Any], Any] | None:
    """The function turning a field's Python value into its database value, None if none is
    needed. UUIDs and datetimes are converted once each per insert (`converted` is shared by
    the fields): a job's started_at repeats its created_at, its finished_at its updated_at, and
    its id is the job id of each of its customers; conversions are the costliest part of a row.
    """
    target = model_field.target_field if model_field.is_relation else model_field
    kind = target.get_internal_type()
    if kind in _PLAIN_TYPES:
        return None
    # prepared=True: the values built here already have the field's Python type (aware
    # datetimes, UUIDs, JSON-ready data), so Django's preparation step would change nothing.
    prepare = functools.partial(model_field.get_db_prep_value, connection=db, prepared=True)
    if kind not in {"DateTimeField", "UUIDField"}:
        return prepare

    def convert_once(value: Any) -> Any:
        if value is None:
            return None
        result = converted.get(value)
        if result is None:
            result = converted[value] = prepare(value)
        return result

    return convert_once


def _insert_rows(
    model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows of values for the fields `names` (attnames) with one executemany.

    Not bulk_create: that builds a model instance per row (too slow for millions) and runs
    `pre_save`, which would overwrite the legacy `updated_at` with now. Fields not named take
    their model default, computed for each row when it is callable (a new UUID, the time now)
    as the ORM would; an auto primary key is left to the database.
    """
    by_name = {f.attname: f for f in model._meta.concrete_fields}
    given = [by_name[name] for name in names]
    missing = [
        f
        for f in by_name.values()
        if f.attname not in names and not (f.primary_key and isinstance(f, models.AutoField))
    ]
    # The wrapper itself, not the `connection` proxy, which costs a lookup per value.
    db = connections[DEFAULT_DB_ALIAS]
    per_row = [f for f in missing if f.has_default() and callable(f.default)]
    constant = [f for f in missing if f not in per_row]
    defaults = tuple(f.get_db_prep_save(f.get_default(), db) for f in constant)
    converted: dict[Any, Any] = {}
    conversions = [
        (index, convert)
        for index, model_field in enumerate(given)
        if (convert := _converter(model_field, db, converted)) is not None
    ]
    params = []
    for row in rows:
        values = list(row)
        for index, convert in conversions:
            values[index] = convert(values[index])
        fresh = (f.get_db_prep_save(f.get_default(), db) for f in per_row)
        params.append((*values, *defaults, *fresh))
    if not params:
        return
    quote_name = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (names from the model)
        quote_name(model._meta.db_table),
        ", ".join(quote_name(f.column) for f in given + constant + per_row),
        ", ".join(["%s"] * (len(given) + len(missing))),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
