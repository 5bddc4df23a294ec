from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from powercrud_async.async_manager import AsyncManager

urlpatterns = [
    path("admin/", admin.site.urls),
    path("async/", include(AsyncManager.get_urlpatterns())),
]
