from __future__ import annotations

from django.contrib import admin
from django.urls import path

from powercrud_async.async_manager import AsyncManager

urlpatterns = [
    path("admin/", admin.site.urls),
    AsyncManager.get_urlpatterns(prefix=""),  # /async/progress/
]
