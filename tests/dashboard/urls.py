"""URLs for the dashboard tests: the packaged dashboard, the same under an instance namespace,
and seed 000's subclass under its ``namespace``."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from powercrud_async.async_manager import AsyncManager
from tests.dashboard.views import AsyncTaskRecordView

urlpatterns = [
    path("admin/", admin.site.urls),
    AsyncManager.get_urlpatterns(prefix=""),  # /async/progress/
    path("tasks/", include("powercrud_async.dashboard.urls")),
    path("ops/", include("powercrud_async.dashboard.urls", namespace="ops")),
    path("sample/", include((AsyncTaskRecordView.get_urls(), "async"))),
]
