from __future__ import annotations

from django.apps import AppConfig


class SampleConfig(AppConfig):
    """The sample is one package: project (settings, urls) and app (models, views, commands)."""

    name = "sample"
    label = "sample"
    verbose_name = "Sample library"
    default_auto_field = "django.db.models.BigAutoField"
