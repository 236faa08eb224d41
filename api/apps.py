from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "JSON API"

    def ready(self) -> None:
        from api import receivers  # noqa: F401  (revokes the tokens of a deactivated user)
