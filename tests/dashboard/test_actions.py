"""Operator actions: cancel, retry, release locks, delete; single and bulk; confirmation, reports
with counts, refusals with reasons, and the audit trail."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from powercrud_async.async_manager import AsyncManager
from powercrud_async.models import AuditEntry, LiveTask, TaskEvent, TaskLock, TaskLogEntry
from powercrud_async.statuses import TaskStatus
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

ACT = "/tasks/actions/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "pca-flash"}


def status(key: str) -> str:
    return AsyncTaskRecord.objects.get(task_name=key).status


def fail(key: str) -> None:
    AsyncManager.resolve_manager(LiveTask.objects.get(task_name=key).manager_class).finish(
        key,
        TaskStatus.FAILED,
        error="ValueError: boom",
        traceback="Traceback ...",
        reason="ValueError: boom",
    )


def post(
    client: Any,
    action: str,
    keys: list[str],
    *,
    confirmed: bool = True,
    htmx: bool = True,
    **extra: str,
) -> Any:
    data: dict[str, Any] = {
        "action": action,
        "tasks": keys,
        "next": "/tasks/jobs/?status=failed",
        **extra,
    }
    if confirmed:
        data["confirmed"] = "1"
    return client.post(ACT, data, **(HTMX if htmx else {}))


def test_cancel_queued_jobs_in_bulk_with_counts(staff_client: Any, launch: Any) -> None:
    keys = [launch("tests.testapp.tasks.slow", 5.0) for _ in range(3)]
    done = launch("tests.testapp.tasks.add", 1, 1)
    AsyncManager.resolve_manager().cancel_task(done)
    response = post(staff_client, "cancel", [*keys, done])
    assert response.status_code == 200
    assert response.context["summary"] == "Cancelled 3 jobs, 1 had already finished."
    assert json.loads(response["HX-Trigger"]) == {
        "pca-refresh": {}
    }  # the list refreshes with its own filters
    assert [status(k) for k in keys] == ["cancelled"] * 3
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.action, entry.targets) == ("ops", "cancel", [*keys, done])
    assert (entry.outcome, entry.succeeded, entry.refused) == (
        "Cancelled 3 jobs, 1 had already finished.",
        3,
        0,
    )


def test_cancel_a_running_job_asks_it_to_stop(staff_client: Any, launch: Any) -> None:
    key = launch("tests.testapp.tasks.slow", 5.0)
    LiveTask.objects.filter(task_name=key).update(
        status="in_progress", started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    response = post(staff_client, "cancel", [key])
    assert response.context["summary"] == "Asked 1 running job to stop."
    assert LiveTask.objects.get(task_name=key).cancel_requested


def test_destructive_actions_confirm_in_the_page_first(staff_client: Any, launch: Any) -> None:
    keys = [launch("tests.testapp.tasks.slow", 5.0) for _ in range(2)]
    response = post(staff_client, "cancel", keys, confirmed=False)
    html = response.content.decode()
    assert "Cancel 2 jobs?" in html and keys[0] in html and keys[1] in html
    assert 'name="confirmed" value="1"' in html and "Yes, cancel 2 jobs" in html
    assert "window.confirm" not in html and "<html" not in html
    assert [status(k) for k in keys] == ["pending", "pending"]  # nothing happened yet
    assert not AuditEntry.objects.exists()
    # Without JavaScript the confirmation is a page of its own.
    page = post(staff_client, "delete", keys, confirmed=False, htmx=False)
    assert "<html" in page.content.decode() and "Delete 2 job records?" in page.content.decode()


def test_retry_creates_a_linked_job(
    staff_client: Any, launch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key = launch("tests.testapp.tasks.add", 2, 3, conflict_ids={"testapp.Project": [1]})
    fail(key)
    assert status(key) == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(staff_client, "retry", [key])
    assert response.context["summary"] == "Retried 1 job."
    new_key = response.context["lines"][0]["new_key"]
    assert new_key and new_key != key
    record = AsyncTaskRecord.objects.get(task_name=new_key)
    # launched without a user, so the retry has none either; the operator is on its timeline
    assert (record.retry_of, record.status, record.user_label) == (key, "pending", "")
    assert TaskEvent.objects.filter(
        task_name=new_key, event="retry", message__contains="by ops"
    ).exists()
    assert f'href="/tasks/jobs/{new_key}/"' in response.content.decode()
    detail = staff_client.get(f"/tasks/jobs/{key}/").content.decode()
    assert f'href="/tasks/jobs/{new_key}/"' in detail  # and back


def test_retry_refuses_live_jobs_and_says_why(staff_client: Any, launch: Any) -> None:
    key = launch("tests.testapp.tasks.slow", 5.0)
    response = post(staff_client, "retry", [key])
    assert response.context["level"] == "error"
    assert response.context["summary"] == (
        f"Refused to retry {key}: only failed or cancelled jobs can be retried (this one is queued)."
    )
    assert AuditEntry.objects.get().refused == 1


def test_bulk_retry_mixed(
    staff_client: Any, launch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    failed = [launch("tests.testapp.tasks.add", i, i) for i in range(2)]
    for key in failed:
        fail(key)
    live = launch("tests.testapp.tasks.slow", 5.0)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(staff_client, "retry", [*failed, live])
    assert response.context["summary"] == "Retried 2 jobs, 1 refused."
    assert response.context["level"] == "warning"
    assert AsyncTaskRecord.objects.filter(retry_of__in=failed).count() == 2


def test_release_locks_of_a_dead_job_but_not_a_live_one(staff_client: Any, launch: Any) -> None:
    dead = launch("tests.testapp.tasks.slow", 5.0, conflict_ids={"testapp.Project": [1, 2]})
    live = launch("tests.testapp.tasks.slow", 5.0, conflict_ids={"testapp.Project": [3]})
    long_ago = timezone.now() - timedelta(minutes=10)
    LiveTask.objects.filter(task_name=dead).update(
        status="in_progress", started_at=long_ago, heartbeat_at=long_ago
    )
    LiveTask.objects.filter(task_name=live).update(
        status="in_progress", started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    response = post(staff_client, "release", [dead, live])
    assert response.context["summary"] == "Released 2 locks of 1 job, 1 refused."
    lines = {line["key"]: line for line in response.context["lines"]}
    assert lines[live]["result"] == "refused" and "still live" in lines[live]["detail"]
    assert list(TaskLock.objects.values_list("task_name", flat=True)) == [live]
    assert status(dead) == "failed"  # the dead job is ended, with the reason
    single = post(staff_client, "release", [live])
    assert single.context["summary"].startswith(
        f"Refused to release the locks of {live}: still live"
    )


def test_delete_finished_records_with_their_timeline_and_logs(
    staff_client: Any, make_record: Any
) -> None:
    make_record(task_name="old", status="success")
    make_record(task_name="busy", status="in_progress")
    TaskEvent.objects.create(task_name="old", event="complete")
    TaskLogEntry.objects.create(task_name="old", level=20, level_name="INFO", message="x")
    response = post(staff_client, "delete", ["old", "busy"])
    assert response.context["summary"] == "Deleted 1 job record, 1 refused."
    assert list(AsyncTaskRecord.objects.values_list("task_name", flat=True)) == ["busy"]
    assert not TaskEvent.objects.exists() and not TaskLogEntry.objects.exists()
    refused = {line["key"]: line["detail"] for line in response.context["lines"]}["busy"]
    assert refused == "it is still queued or running: cancel it first"


def test_delete_from_the_detail_page_goes_back_to_the_list(
    staff_client: Any, make_record: Any
) -> None:
    make_record(task_name="old", status="success")
    response = post(staff_client, "delete", ["old"], next="/tasks/jobs/", follow="1")
    assert response.status_code == 200 and response["HX-Redirect"] == "/tasks/jobs/"
    listed = staff_client.get("/tasks/jobs/")
    assert (
        "Deleted 1 job record." in listed.content.decode()
    )  # the message travels with the redirect


def test_without_javascript_actions_redirect_back_with_a_message(
    staff_client: Any, make_record: Any
) -> None:
    make_record(task_name="old", status="success")
    response = post(staff_client, "delete", ["old"], htmx=False)
    assert response.status_code == 303 and response["Location"] == "/tasks/jobs/?status=failed"
    assert "Deleted 1 job record." in staff_client.get(response["Location"]).content.decode()


def test_next_must_stay_on_this_site(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="old", status="success")
    response = post(staff_client, "delete", ["old"], htmx=False, next="https://evil.example/")
    assert response["Location"] == "/tasks/jobs/"


def test_no_selection_and_unknown_action(staff_client: Any) -> None:
    response = post(staff_client, "cancel", [])
    assert response.context["summary"] == "Select at least one job first."
    assert staff_client.post(ACT, {"action": "explode", "tasks": ["x"]}).status_code == 400


def test_unknown_keys_are_refused_not_crashed(staff_client: Any) -> None:
    response = post(staff_client, "cancel", ["never-launched"])
    assert response.context["summary"].startswith("Refused to cancel never-launched:")
    response = post(staff_client, "retry", ["never-launched"])
    assert "purged" in response.context["summary"]


def test_row_and_detail_forms_post_to_the_action_endpoint(staff_client: Any, launch: Any) -> None:
    key = launch("tests.testapp.tasks.slow", 5.0)
    html = staff_client.get("/tasks/jobs/").content.decode()
    assert f'<input type="hidden" name="tasks" value="{key}">' in html
    assert 'hx-post="/tasks/actions/" hx-target="#pca-flash"' in html
    assert 'name="action" value="cancel"' in html
    detail = staff_client.get(f"/tasks/jobs/{key}/").content.decode()
    assert (
        'name="action" value="cancel" class="pca-btn pca-btn--primary">Cancel job</button>'
        in detail
    )
