from __future__ import annotations

from django.apps import AppConfig


class PowercrudAsyncConfig(AppConfig):
    name = "powercrud_async"
    verbose_name = "PowerCRUD async"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import broker, checks  # noqa: F401 - checks: registers the system checks
        from .async_hooks import on_post_execute

        broker.connect_post_execute(on_post_execute)
