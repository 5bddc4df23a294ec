"""The progress endpoint: JSON for scripts, an HTML fragment for HTMX, HTTP 286 at the end."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import View
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseStopPolling

from . import progress
from .statuses import TaskStatus
from .visibility import can_view


class ProgressView(View):
    """``GET ?task_name=<key>`` → ``{task_name, status, progress, percent, ...}``."""

    http_method_names = ["get", "head", "options"]
    template_name = "powercrud_async/partials/progress.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        task_name = request.GET.get("task_name") or request.GET.get("task_key") or kwargs.get("task_name")
        if not task_name:
            return JsonResponse({"error": "The task_name query parameter is required."}, status=400)
        snapshot = progress.resolve(task_name)  # no SQL of ours while the job runs
        if snapshot is None or not can_view(request, snapshot.user_id, task_name):
            return JsonResponse({"error": "Unknown task.", "task_name": task_name}, status=404)
        status = TaskStatus(snapshot.status)
        code = HTMX_STOP_POLLING if status.is_terminal else 200
        data = snapshot.as_dict()
        data.pop("user_id", None)
        data.update(status_label=str(status.label), terminal=status.is_terminal)
        if getattr(request, "htmx", False):
            html = render_to_string(self.template_name, {"task": data, "status": status}, request=request)
            return HttpResponseStopPolling(html) if status.is_terminal else HttpResponse(html)
        return JsonResponse(data, status=code)
