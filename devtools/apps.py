from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """What exists for development and demos: the fake cluster, demo seeding, the all-in-one
    runner."""

    name = "devtools"
    verbose_name = "Development tools"
