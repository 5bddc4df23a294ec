"""Read-only Django admin for our tables and for the project's task-record model.

The record model belongs to the project, so it is registered only if it exists: the default
manager's (or ``DASHBOARD["RECORD_MODEL"]``), unless the project registered it itself or set
``DASHBOARD["ADMIN"] = False``. To register it yourself, one line::

    admin.site.register(AsyncTaskRecord, AsyncTaskRecordAdmin)
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.module_loading import module_has_submodule

from .models import AuditEntry, LiveTask, TaskEvent, TaskLock, TaskLogEntry
from .payloads import json_text
from .redaction import redact

__all__ = ["AsyncTaskRecordAdmin", "ReadOnlyAdmin", "register_record_admin"]

logger = logging.getLogger("powercrud_async.admin")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Everything visible, nothing editable: these rows are written by the jobs themselves."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _present(model: type[models.Model], names: tuple[str, ...]) -> list[str]:
    have = {f.name for f in model._meta.get_fields()}
    return [name for name in names if name in have]


def pretty(value: Any) -> str:
    return "" if value in (None, "") else json_text(value)


class AsyncTaskRecordAdmin(ReadOnlyAdmin):
    """For ``AbstractAsyncTaskRecord`` subclasses; columns a bespoke model lacks are left out."""

    list_columns = (
        "task_name",
        "status",
        "user_label",
        "func_path",
        "percent",
        "created_at",
        "updated_at",
        "duration",
        "cleaned_up",
    )
    filter_columns = ("status", "cleaned_up", "created_at", "updated_at")
    search_columns = ("task_name", "user_label", "message", "affected_objects", "func_path")
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over a big table on every page

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [*(_present(self.model, self.list_columns) or ["__str__"]), "dashboard_link"]

    def get_list_filter(self, request: HttpRequest) -> list[str]:  # type: ignore[override]
        return _present(self.model, self.filter_columns)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return _present(self.model, self.search_columns)

    def get_date_hierarchy(self) -> str | None:
        return "created_at" if _present(self.model, ("created_at",)) else None

    @property
    def date_hierarchy(self) -> str | None:  # type: ignore[override]
        return self.get_date_hierarchy()

    #: Argument columns shown through ``redact`` (their raw values are never rendered).
    redacted_columns = ("args_payload", "kwargs_payload")

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return _present(self.model, self.redacted_columns)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        hidden = set(self.redacted_columns)
        shown = [f.name for f in self.model._meta.concrete_fields if f.name not in hidden]
        masked = {"args_payload": "task_arguments", "kwargs_payload": "task_keyword_arguments"}
        return [*shown, *(masked[name] for name in _present(self.model, self.redacted_columns))]

    @admin.display(description="Arguments")
    def task_arguments(self, obj: Any) -> str:
        return pretty(redact(getattr(obj, "args_payload", None))) or "—"

    @admin.display(description="Keyword arguments")
    def task_keyword_arguments(self, obj: Any) -> str:
        return pretty(redact(getattr(obj, "kwargs_payload", None))) or "—"

    @admin.display(description="Dashboard")
    def dashboard_link(self, obj: Any) -> str:
        key = getattr(obj, "task_name", None)
        if not key:
            return "—"
        try:
            url = reverse("powercrud_async_dashboard:tasks-detail", kwargs={"task_key": key})
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">Open</a>', url)


@admin.register(LiveTask)
class LiveTaskAdmin(ReadOnlyAdmin):
    list_display = (
        "task_name",
        "status",
        "func_path",
        "user_id",
        "created_at",
        "heartbeat_at",
        "finished_at",
        "attempts",
    )
    list_filter = ("status", "cancel_requested")
    search_fields = ("task_name", "func_path", "reason", "group")
    exclude = ("call",)
    show_full_result_count = False


@admin.register(TaskLock)
class TaskLockAdmin(ReadOnlyAdmin):
    list_display = ("model_label", "object_pk", "task_name", "acquired_at", "expires_at")
    list_filter = ("model_label",)
    search_fields = ("model_label", "object_pk", "task_name")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "username", "action", "outcome", "succeeded", "refused")
    list_filter = ("action", "created_at")
    search_fields = ("username", "outcome", "targets")
    date_hierarchy = "created_at"


@admin.register(TaskEvent)
class TaskEventAdmin(ReadOnlyAdmin):
    list_display = ("task_name", "event", "status", "message", "created_at")
    list_filter = ("event",)
    search_fields = ("task_name", "message")
    show_full_result_count = False


@admin.register(TaskLogEntry)
class TaskLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("task_name", "level_name", "logger_name", "message", "created_at")
    list_filter = ("level_name",)
    search_fields = ("task_name", "message", "logger_name")
    show_full_result_count = False


def _record_model() -> type[models.Model] | None:
    from .dashboard.config import dashboard_config
    from .dashboard.records import resolve_record_model

    config = dashboard_config()
    if not config["ADMIN"]:
        return None
    try:
        return resolve_record_model(None, config["RECORD_MODEL"])
    except Exception:  # noqa: BLE001 - no record model configured (yet): nothing to register
        return None


def register_record_admin(site: admin.AdminSite = admin.site) -> bool:
    """Register the record model read-only unless it is missing or already registered."""
    model = _record_model()
    if model is None or site.is_registered(model):
        return False
    site.register(model, AsyncTaskRecordAdmin)
    return True


def _autoregister() -> None:
    """Run while the admin autodiscovers: let the record model's own app register it first
    (importing its ``admin`` module now is what autodiscovery would do a moment later)."""
    try:
        model = _record_model()
        if model is None:
            return
        app = apps.get_app_config(model._meta.app_label)
        if app.name != __package__ and module_has_submodule(app.module, "admin"):
            try:
                import_module(f"{app.name}.admin")
            except Exception:  # noqa: BLE001 - autodiscovery imports it again and reports the error
                return
        register_record_admin()
    except Exception:  # noqa: BLE001 - the admin must start even with a broken dashboard config
        logger.exception("Could not register the task record model in the admin")


_autoregister()
