"""WSGI entry point for production servers (for example gunicorn tmsdash.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from lib.connections import keep_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")

application = get_wsgi_application()
# Each of the web server's threads keeps its database connection from one request to the next.
keep_connections()
