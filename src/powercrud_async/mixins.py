"""View mixins, re-exported under the names PowerCRUD users already write.

``PowerCRUDMixin`` on a neapolitan ``CRUDView`` over a task-record model is the whole task
dashboard, as PowerCRUD documents it::

    class AsyncTaskRecordView(PowerCRUDMixin, CRUDView):
        model = AsyncTaskRecord
        namespace = "async"
        use_htmx = True
        use_modal = True
        fields = ["task_name", "status", "user_label", "updated_at"]
        detail_fields = ["task_name", "status", "message", "result_payload", "completed_at"]
"""

from __future__ import annotations

from .dashboard.views import TaskDashboardMixin, TaskDashboardView

PowerCRUDMixin = TaskDashboardMixin

__all__ = ["PowerCRUDMixin", "TaskDashboardMixin", "TaskDashboardView"]

# -- launch sites: launch a locked job over selected rows from a view or the admin -------------------
from .launch import AsyncLaunchMixin, AsyncMixin, async_admin_action  # noqa: E402

__all__ += ["AsyncLaunchMixin", "AsyncMixin", "async_admin_action"]
