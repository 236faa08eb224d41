"""WSGI entry point for production servers (for example gunicorn tmsdash.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")

application = get_wsgi_application()
