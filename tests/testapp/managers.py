"""Module-level tracking managers (and helpers) the tests use; workers import them by path."""

from __future__ import annotations

import os
import signal
from typing import Any

from powercrud_async.async_dashboard import ModelTrackingAsyncManager
from powercrud_async.async_manager import AsyncManager

#: What seed 000 section 4's side effects did, in this process.
NOTIFIED: list[tuple[str, str, Any]] = []


class TrackedManager(ModelTrackingAsyncManager):
    """The common case: a subclass of ``AbstractAsyncTaskRecord`` with the default columns."""

    record_model_path = "testapp.AsyncTaskRecord"


class CustomFieldsManager(ModelTrackingAsyncManager):
    """A bespoke model with its own column names."""

    record_model_path = "testapp.CustomRecord"
    field_map = {
        "task_name": "key",
        "status": "state",
        "message": "note",
        "user": "who",
        "result": "output",
        "completed_at": "done_at",
    }


class MinimalManager(ModelTrackingAsyncManager):
    record_model_path = "testapp.MinimalRecord"


class UntimedManager(TrackedManager):
    """A subclass that switches the timeline off."""

    timeline_enabled = False


def notify_ops(message: str) -> None:
    NOTIFIED.append(("ops", message, None))


def log_success(task_name: str, result: Any) -> None:
    NOTIFIED.append(("success", task_name, result))


class NotifyingAsyncManager(ModelTrackingAsyncManager):
    """Seed 000, section 4, as written (with the test app's record model)."""

    record_model_path = "testapp.AsyncTaskRecord"

    def async_task_lifecycle(self, event, task_name, **payload):  # type: ignore[no-untyped-def]
        super().async_task_lifecycle(event, task_name, **payload)
        if event == "fail":
            notify_ops(f"Task {task_name} failed: {payload.get('result')}")
        elif event == "complete":
            log_success(task_name, payload.get("result"))


def shout(value: Any) -> str:
    """A config formatter: upper-cased label."""
    return str(value).upper() if value else "NOBODY"


def tagged_payload(value: Any) -> Any:
    """A config payload formatter: wraps values so tests can see it ran."""
    return {"tagged": value}


def progress_job(steps: int = 50, delay: float = 0.0, *, task_key: str | None = None) -> int:
    """A progress-heavy job reporting through the manager it runs under."""
    import time

    from powercrud_async.async_context import update_progress

    for step in range(1, steps + 1):
        if delay:
            time.sleep(delay)
        update_progress(f"step {step}/{steps}", current=step, total=steps)
    return steps


class Recording(AsyncManager):
    """Keeps every lifecycle event it sees, in order, for assertions (reset ``events`` per test)."""

    events: list[tuple[str, str, dict[str, Any]]] = []

    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        Recording.events.append((event, task_name, payload))


class DiesReporting(Recording):
    """Its worker is killed (SIGKILL, as by the OOM killer) while handing its job's end to the
    lifecycle handler: after the job ended durably, before its events were marked delivered."""

    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        if event in ("complete", "fail") and not payload.get("redelivered"):
            os.kill(os.getpid(), signal.SIGKILL)
        super().async_task_lifecycle(event, task_name, **payload)


def completion_calls(task_name: str) -> Any:
    """What a completion override below recorded for ``task_name`` (in the shared cache, because
    django-q2 calls the hook in the cluster's monitor process)."""
    from django.core.cache import caches

    return caches["default"].get(f"tests:completion:{task_name}")


def _record_completion(task_name: str, success: Any, arguments: int) -> None:
    from django.core.cache import caches

    caches["default"].set(f"tests:completion:{task_name}", (bool(success), arguments), 600)


class PowerCrudCompletionManager(AsyncManager):
    """``handle_task_completion`` overridden as PowerCRUD documents it."""

    def handle_task_completion(self, task, task_name):  # type: ignore[no-untyped-def]
        super().handle_task_completion(task, task_name)
        _record_completion(task_name, task.success, 2)


class OneArgCompletionManager(AsyncManager):
    """An override written against the older one-argument signature."""

    def handle_task_completion(self, task):  # type: ignore[no-untyped-def,override]
        super().handle_task_completion(task)
        _record_completion(str(task.name), task.success, 1)
