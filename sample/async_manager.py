"""The sample's manager: every job's lifecycle lands in ``sample.AsyncTaskRecord``.

``POWERCRUD_SETTINGS["ASYNC_MANAGER_DEFAULT"]`` points here, so views, admin actions, commands,
workers and the completion hook all resolve this one class.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from powercrud_async.async_dashboard import ModelTrackingAsyncManager

__all__ = ["SampleAsyncManager"]


class SampleAsyncManager(ModelTrackingAsyncManager):
    record_model_path = "sample.AsyncTaskRecord"

    def format_user(self, user: Any) -> str:
        if not user:
            return "Anonymous"
        if hasattr(user, "get_username"):
            return str(user.get_username()) or "Anonymous"
        return str(user)

    def format_affected(self, affected: Any) -> str:
        if isinstance(affected, str):
            return affected
        if isinstance(affected, Iterable):
            return ", ".join(map(str, affected))
        return str(affected) if affected else ""
