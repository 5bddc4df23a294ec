"""Seed 000 section 3's dashboard view, written as the seed writes it (import prefix changed)."""

from __future__ import annotations

from neapolitan.views import CRUDView

from powercrud_async.mixins import PowerCRUDMixin
from tests.testapp.models import AsyncTaskRecord


class AsyncTaskRecordView(PowerCRUDMixin, CRUDView):
    model = AsyncTaskRecord
    namespace = "async"
    use_htmx = True
    use_modal = True
    fields = ["task_name", "status", "user_label", "updated_at"]
    detail_fields = [
        "task_name",
        "status",
        "message",
        "progress_payload",
        "result_payload",
        "completed_at",
        "failed_at",
    ]
