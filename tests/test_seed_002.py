"""Seed 002's examples as written, with only the import prefix changed."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import URLPattern

pytestmark = pytest.mark.django_db(transaction=True)

sent: list[tuple[Any, str]] = []
reported: list[tuple[str, Any]] = []


def send_email(user: Any, text: str) -> None:
    sent.append((user, text))


def report_error(task_name: str, result: Any) -> None:
    reported.append((task_name, result))


# --- section 5, as written -------------------------------------------------------------------
from powercrud_async.async_manager import AsyncManager  # noqa: E402


class NotificationsAsyncManager(AsyncManager):
    def async_task_lifecycle(self, event, task_name, **payload):  # type: ignore[no-untyped-def]
        if event == "create":
            send_email(payload.get("user"), f"Task {task_name} queued")
        elif event == "fail":
            report_error(task_name, payload.get("result"))


def test_section_4_progress_url() -> None:
    urlpatterns = [
        AsyncManager.get_url(name="async-progress"),
    ]
    assert isinstance(urlpatterns[0], URLPattern) and urlpatterns[0].name == "async-progress"


def test_section_5_lifecycle_hooks() -> None:
    sent.clear()
    reported.clear()
    manager = NotificationsAsyncManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, user="alice")
    assert sent == [("alice", f"Task {key} queued")]
    with pytest.raises(ValueError):
        manager.launch_async_task("tests.testapp.tasks.fail", "broken", sync=True)
    assert len(reported) == 1 and "ValueError: broken" in reported[0][1]


def test_section_6_cleanup_tooling() -> None:
    out = StringIO()
    call_command("pcrud_cleanup_async", stdout=out)
    assert "Reclaimed" in out.getvalue()
    summary = AsyncManager.cleanup_completed_tasks()
    assert isinstance(summary, dict) and summary["counts"]["reclaimed"] == 0
    from powercrud_async.schedules import cleanup_async_artifacts

    assert cleanup_async_artifacts()["counts"]["purged"] == 0


def test_section_2_worker_signature_through_runner() -> None:
    """The section 2 worker gets task_key and manager_class and reports progress."""
    from powercrud_async.models import LiveTask

    key = AsyncManager().launch_async_task("tests.testapp.tasks.seed_worker", 7, sync=True)
    assert LiveTask.objects.get(task_name=key).status == "success"
    assert AsyncManager().get_progress(key)["status"] == "success"
