"""The sizes several parts of a job's life keep to, here so that none imports another for
them."""

from __future__ import annotations

MAX_ERROR_LENGTH = 1000
ERRORS_NAMED = 10
# Rows per INSERT and per IN (...) list: within SQLite's and PostgreSQL's parameter limits.
CHUNK = 2000
