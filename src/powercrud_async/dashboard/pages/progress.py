"""The dashboard's progress endpoint: the package's, behind the dashboard's access and owner rules."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from ...endpoint import ProgressView


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
    """On the last answer (htmx's stop-polling response) it also tells the page to refresh."""
    key = request.GET.get("task_name") or request.GET.get("task_key") or ""
    if key and not view.sees_everything and view.get_record(key) is None:
        return JsonResponse({"error": "Unknown task.", "task_name": key}, status=404)
    response: HttpResponseBase = ProgressView.as_view()(request)
    if isinstance(response, HttpResponseStopPolling):
        trigger_client_event(response, "pca-job-finished")
    return response
