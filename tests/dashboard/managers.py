"""The tracking manager the dashboard tests launch with (workers import it by dotted path)."""

from __future__ import annotations

from powercrud_async.async_dashboard import ModelTrackingAsyncManager


class DashboardManager(ModelTrackingAsyncManager):
    record_model_path = "testapp.AsyncTaskRecord"
