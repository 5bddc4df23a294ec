from __future__ import annotations

from django.apps import AppConfig


class PowercrudAsyncConfig(AppConfig):
    name = "powercrud_async"
    verbose_name = "PowerCRUD async"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_execute

        from . import checks  # noqa: F401 - registers the system checks
        from .async_hooks import on_post_execute

        post_execute.connect(on_post_execute, dispatch_uid="powercrud_async.post_execute")
