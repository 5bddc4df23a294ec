"""Mount the ready-made dashboard: ``path("tasks/", include("powercrud_async.dashboard.urls"))``.

Pages are named ``tasks-<page>`` in the ``powercrud_async_dashboard`` namespace (overview, list,
detail, locks, workers, logs, events, audit, action, export, progress); an instance namespace given to ``include()``
works too, because the views reverse through the namespace of the request.
"""

from __future__ import annotations

from .views import TaskDashboardView

app_name = "powercrud_async_dashboard"

urlpatterns = TaskDashboardView.get_urls()
