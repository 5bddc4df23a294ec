"""URLs of the sample: home, books, the progress endpoint, the dashboard, auth and admin."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from powercrud_async.async_manager import AsyncManager

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("sample/book/bulk/", views.BookBulkView.as_view(), name="book-bulk"),
    path("sample/book/<int:pk>/rebuild/", views.start_rebuild, name="book-rebuild"),
    path("sample/", include(views.BookCRUDView.get_urls())),
    path("sample/tasks/<str:task_key>/", views.task_detail, name="task-detail"),
    # The progress endpoint at sample/async/progress/: powercrud_async:progress?task_name=<key>
    AsyncManager.get_urlpatterns(prefix="sample/"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The package dashboard, where seed 000 puts it.
    path("sample/async-dashboard/", include("powercrud_async.dashboard.urls")),
    # Seed 000 section 3's declaration of the same dashboard over sample.AsyncTaskRecord.
    path("sample/", include((views.AsyncTaskRecordCRUDView.get_urls(), "async"))),
    path("admin/", admin.site.urls),
]
