#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    # Load the settings first, so that a configuration error is said in one line instead of
    # surfacing later as a traceback about apps that are not loaded.
    try:
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as exc:
        sys.exit(f"tmsdash: {exc}")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
