"""A read the ORM builds once per thread and engine, then runs again with new values: for the
few reads a worker makes on every job, whose building (filters, subqueries, compiling) costs
many times their execution.

The queryset is built once with marker values standing where the real ones go, compiled, and
its SQL kept with the compiler's plan of the rows (columns, converters, the select_related
objects); each run replaces the markers' parameters with the real values, adapted as the ORM
adapts them, and turns the rows into model instances as the ORM's own iterator does. A marker
found at no parameter, or a value the ORM adapts differently, fails at the first run, loudly.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

# Values no real read asks for: where they land in the compiled parameters, real ones go.
MARK_UUID = uuid.UUID("00000000-0000-4000-8000-00000000bead")
MARK_TIME = datetime(1970, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class PreparedRead:
    """`build(key, at)` returns the queryset for a model's pk `key` at the moment `at`;
    `first(key, at)` runs it and returns its first instance, or None. A read of no one row
    (`keyed=False`) uses only `at`, and its `first` is given None for `key`. Each thread
    prepares it on its own connection (a worker's threads each keep theirs)."""

    def __init__(
        self, build: Callable[[uuid.UUID, datetime], QuerySet], *, keyed: bool = True
    ) -> None:
        self._build = build
        self._marks = {"key", "at"} if keyed else {"at"}
        self._local = threading.local()

    def first(self, key: uuid.UUID | None, at: datetime) -> Model | None:
        plan = getattr(self._local, "plan", None)
        if plan is None:
            plan = self._local.plan = self._prepare()
        real = {"at": connection.ops.adapt_datetimefield_value(at)}
        if key is not None:
            real["key"] = plan["pk"].get_db_prep_value(key, connection)
        params = [real.get(kind, value) for kind, value in plan["params"]]
        with connection.cursor() as cursor:
            cursor.execute(plan["sql"], params)
            rows = cursor.fetchmany(1)
        compiler = plan["compiler"]
        for row in compiler.results_iter([rows]):
            obj = plan["model"].from_db(
                connection.alias, plan["init_list"], row[plan["start"] : plan["end"]]
            )
            for populator in plan["populators"]:
                populator.populate(row, obj)
            for name, position in compiler.annotation_col_map.items():
                setattr(obj, name, row[position])
            return obj
        return None

    def _prepare(self) -> dict:
        queryset = self._build(MARK_UUID, MARK_TIME)
        pk = queryset.model._meta.pk
        marks = {
            "key": pk.get_db_prep_value(MARK_UUID, connection),
            "at": connection.ops.adapt_datetimefield_value(MARK_TIME),
        }
        compiler = queryset.query.get_compiler(connection=connection)
        sql, compiled = compiler.as_sql()
        params = [
            (next((kind for kind, mark in marks.items() if value == mark), None), value)
            for value in compiled
        ]
        kinds = {kind for kind, _ in params}
        if not self._marks <= kinds:
            raise ValueError(f"a marker is not among the compiled parameters: {compiled!r}")
        klass_info = compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        return {
            "sql": sql,
            "params": params,
            "compiler": compiler,
            "pk": pk,
            "model": klass_info["model"],
            "start": start,
            "end": end,
            "init_list": [f[0].target.attname for f in compiler.select[start:end]],
            "populators": get_related_populators(klass_info, compiler.select, connection.alias),
        }
