"""URLs for tests/test_launch_sites.py: seed 002's launch sites (section 3, as written with the
import prefix changed) next to the package's own launch helpers, against ``tests.testapp``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views import View

from powercrud_async.async_manager import AsyncManager
from powercrud_async.launch import AsyncMixin, async_admin_action
from tests.testapp.models import Project


# --- seed 002, section 1 (the helper), with the prefix changed ---------------------------------
def launch_custom_task(*, user, affected_objects):  # type: ignore[no-untyped-def]
    manager = AsyncManager()

    # Optional: prevent overlapping work
    conflict_ids = {"testapp.Project": {obj.pk for obj in affected_objects}}
    if not manager.add_conflict_ids("custom-task", conflict_ids):
        raise RuntimeError("Another task already processes these projects")

    manager.launch_async_task(
        func="tests.testapp.tasks.echo",
        conflict_ids=conflict_ids,
        user=user,
        affected_objects=[str(obj) for obj in affected_objects],
        task_kwargs={"extra": "info"},
    )


# --- seed 002, section 3: admin action ---------------------------------------------------------
@admin.action(description="Rebuild projects in background")
def rebuild_projects(modeladmin, request, queryset):  # type: ignore[no-untyped-def]
    launch_custom_task(user=request.user, affected_objects=queryset)


# --- seed 002, section 3: regular view -----------------------------------------------------------
def start_rebuild(request, pk):  # type: ignore[no-untyped-def]
    project = get_object_or_404(Project, pk=pk)
    launch_custom_task(user=request.user, affected_objects=[project])
    return redirect("project-dashboard")


def project_dashboard(request: HttpRequest) -> HttpResponse:
    return HttpResponse("project dashboard")


# --- the package helpers --------------------------------------------------------------------------
site = admin.AdminSite(name="launch_admin")


class ProjectAdmin(admin.ModelAdmin):
    actions = [
        rebuild_projects,
        async_admin_action(
            "tests.testapp.tasks.echo",
            description="Touch projects in background",
            permissions=["change"],
            task_kwargs={"reason": "admin"},
        ),
    ]


site.register(Project, ProjectAdmin)


class ProjectBulkView(AsyncMixin, View):
    """A view using the launch mixin: POST ``selected`` pks, get the launch result as JSON."""

    model = Project
    async_manager_class_path = "tests.test_launch_sites.RecordingManager"
    async_manager_config = {"source": "bulk-view"}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        projects = Project.objects.filter(pk__in=request.POST.getlist("selected"))
        result = self.launch_async("tests.testapp.tasks.echo", projects, description="bulk touch")
        return JsonResponse(
            {"task_key": result.task_key, "message": result.message, "conflicts": result.conflicts},
            status=202 if result.ok else 409,
        )


urlpatterns = [
    path("launch-admin/", site.urls),
    path("projects/<int:pk>/rebuild/", start_rebuild, name="project-rebuild"),
    path("projects/dashboard/", project_dashboard, name="project-dashboard"),
    path("projects/bulk/", ProjectBulkView.as_view(), name="project-bulk"),
]
