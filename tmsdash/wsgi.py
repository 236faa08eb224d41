"""WSGI entry point for production servers (for example gunicorn tmsdash.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")

application = get_wsgi_application()


def keep_connections() -> None:
    """Each of the web server's threads keeps its database connection from one request to the
    next, where Django's default (CONN_MAX_AGE 0) opened one per request: on PostgreSQL a new
    server process, which cost more CPU than an authenticated API request's own work
    (docs/performance.md). The threads are few (TMS_WEB_THREADS) and live as long as their
    process. A connection is checked before its first use in each request
    (CONN_HEALTH_CHECKS), so one the database dropped is replaced, not failed on; Django still
    closes one left in a transaction or broken at the request's end."""
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = None
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = True


keep_connections()
