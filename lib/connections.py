"""Database connections kept by a long-lived thread from one unit of work to the next."""

from __future__ import annotations

from django.db import connections


def keep_connections() -> None:
    """Let each thread of this process keep its database connection from one request or task
    to the next, where Django's default (CONN_MAX_AGE 0) opens one for each: on PostgreSQL a
    new server process, which cost more CPU than an authenticated API request's own work, or
    about 5 ms of the worker's a job (docs/performance.md). The web server's and the worker's
    threads are few and live as long as their process, so each keeps one connection, checked
    before its first use in each request or task (CONN_HEALTH_CHECKS) so that one the database
    dropped is replaced, not failed on; Django still closes one left in a transaction or
    broken. Connections made from now on, in this process only, follow this."""
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = None
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = True
