from django.apps import AppConfig


class LegacyConfig(AppConfig):
    """Moving off the legacy dashboard: importing its files and removing its duplicate jobs."""

    name = "legacy"
    verbose_name = "Legacy dashboard"
