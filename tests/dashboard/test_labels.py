"""A job's label: given at launch (``task_label=``), kept in the registry and the record, kept by
a retry, set by launch sites and schedules, and shown by the dashboard as the job's title with
the key as its secondary id."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import timezone
from django_q.models import Schedule

from powercrud_async import schedules
from powercrud_async.async_manager import AsyncManager
from powercrud_async.launch import async_admin_action, job_label, launch_for_objects
from powercrud_async.models import LiveTask, TaskEvent, TaskLogEntry
from powercrud_async.statuses import TaskStatus
from tests.dashboard.managers import DashboardManager
from tests.testapp.models import AsyncTaskRecord, Project

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db(transaction=True)]

LABEL = "Reprice 6 books"


def fail(key: str) -> None:
    DashboardManager().finish(
        key, TaskStatus.FAILED, error="ValueError: boom", reason="ValueError: boom"
    )


def test_the_label_is_registered_recorded_and_carried_by_create(launch: Any) -> None:
    key = launch("tests.testapp.tasks.add", 1, 2, task_label=LABEL)
    assert LiveTask.objects.get(task_name=key).label == LABEL
    assert AsyncManager().get_task_info(key).label == LABEL
    assert AsyncTaskRecord.objects.get(task_name=key).label == LABEL


def test_the_label_never_reaches_the_job(launch: Any) -> None:
    key = launch("tests.testapp.tasks.echo", 1, task_label=LABEL, sync=True)
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.status == "success" and "task_label" not in (record.kwargs_payload or {})
    assert (
        record.result_payload["args"] == [1] and "task_label" not in record.result_payload["kwargs"]
    )


def test_a_retry_keeps_the_label(launch: Any, django_capture_on_commit_callbacks: Any) -> None:
    key = launch("tests.testapp.tasks.add", 1, 2, task_label=LABEL)
    fail(key)
    with django_capture_on_commit_callbacks(execute=True):
        new_key = DashboardManager().retry_task(key)
    assert AsyncTaskRecord.objects.get(task_name=new_key).label == LABEL
    assert LiveTask.objects.get(task_name=new_key).label == LABEL


def test_launch_for_objects_labels_the_job_with_its_description(
    django_capture_on_commit_callbacks: Any,
) -> None:
    projects = [Project.objects.create(name=f"p{i}") for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        result = launch_for_objects(
            "tests.testapp.tasks.echo",
            projects,
            manager=DashboardManager(),
            description="reprice in background",
        )
    assert result.ok
    assert (
        AsyncTaskRecord.objects.get(task_name=result.task_key).label
        == "Reprice in background for 2 projects"
    )


def test_an_admin_action_labels_the_job_and_a_caller_label_wins(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.contrib.auth import get_user_model

    project = Project.objects.create(name="p")
    request = RequestFactory().post("/")
    request.user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    modeladmin = admin.ModelAdmin(Project, admin.site)
    modeladmin.message_user = lambda *args, **kwargs: None  # type: ignore[method-assign]
    for action, expected in (
        (
            async_admin_action(
                "tests.testapp.tasks.echo",
                description="Archive selected projects",
                manager_class_path="tests.dashboard.managers.DashboardManager",
            ),
            "Archive selected projects for 1 project",
        ),
        (
            async_admin_action(
                "tests.testapp.tasks.echo",
                description="Archive",
                task_label="Nightly archive",
                manager_class_path="tests.dashboard.managers.DashboardManager",
            ),
            "Nightly archive",
        ),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            action(modeladmin, request, Project.objects.filter(pk=project.pk))
        newest = AsyncTaskRecord.objects.order_by("-created_at", "-id").first()
        assert newest is not None and newest.label == expected
        DashboardManager().finish(newest.task_name, TaskStatus.SUCCESS)


def test_a_long_description_is_clipped_not_refused() -> None:
    label = job_label("x" * 400)
    assert len(label) == 255 and label.endswith("…")


def test_a_scheduled_run_is_labelled_with_the_schedule_name(
    django_capture_on_commit_callbacks: Any,
) -> None:
    schedule = DashboardManager().schedule_async_task(
        "tests.testapp.tasks.add",
        2,
        3,
        name="Nightly totals",
        schedule_type=Schedule.MINUTES,
        minutes=15,
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = schedules.run_schedule_now(schedule.pk)
    assert AsyncTaskRecord.objects.get(task_name=outcome.task).label == "Nightly totals"


def test_a_blocked_scheduled_run_is_labelled_too(django_capture_on_commit_callbacks: Any) -> None:
    project = Project.objects.create(name="p")
    schedule = DashboardManager().schedule_async_task(
        "tests.testapp.tasks.add",
        2,
        3,
        name="Nightly totals",
        schedule_type=Schedule.MINUTES,
        minutes=15,
        conflict_ids={"testapp.Project": [project.pk]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        AsyncManager().launch_async_task(
            "tests.testapp.tasks.add",
            1,
            1,
            task_key="holder",
            conflict_ids={"testapp.Project": [project.pk]},
        )
    outcome = schedules.run_schedule_now(schedule.pk)
    assert outcome.outcome == "blocked"
    assert AsyncTaskRecord.objects.get(task_name=outcome.task).label == "Nightly totals"


# -- the dashboard ---------------------------------------------------------------------------------
def test_list_and_detail_show_the_label_as_title_and_the_key_as_id(
    staff_client: Any, launch: Any
) -> None:
    key = launch("tests.testapp.tasks.add", 1, 2, task_label=LABEL)
    rows = staff_client.get("/tasks/jobs/").content.decode()
    assert f">{LABEL}</a>" in rows and f'title="{key}"' in rows
    assert f'aria-label="Select job {LABEL} ({key[:8]}…)"' in rows
    assert f'aria-label="More actions for {LABEL} ({key[:8]}…)"' in rows
    detail = staff_client.get(f"/tasks/jobs/{key}/").content.decode()
    assert f"<title>{LABEL} · " in detail
    assert f'{LABEL} <span class="pca-heading-key pca-mono">{key}</span>' in detail
    assert f'data-pca-copy="{key}"' in detail


def test_a_job_without_a_label_is_titled_by_its_function(
    staff_client: Any, make_record: Any
) -> None:
    make_record(task_name="plain-1", func_path="tests.testapp.tasks.add")
    make_record(task_name="bare-1", func_path="")
    rows = staff_client.get("/tasks/jobs/").content.decode()
    assert ">add</a>" in rows and ">bare-1</a>" in rows


def test_a_label_is_text_not_markup(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="x-1", label='<img src=x onerror="alert(1)">')
    for url in ("/tasks/jobs/", "/tasks/jobs/x-1/"):
        page = staff_client.get(url).content.decode()
        assert "<img src=x" not in page and "&lt;img src=x onerror=" in page, url


def test_search_finds_a_job_by_its_label(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="a-1", label="Reprice books")
    make_record(task_name="b-1", label="Archive authors")
    jobs = staff_client.get("/tasks/jobs/?q=reprice").context["jobs"]
    assert [job.key for job in jobs] == ["a-1"]


def test_overview_names_running_stuck_and_failed_jobs_by_label(
    staff_client: Any, make_record: Any
) -> None:
    now = timezone.now()
    make_record(task_name="run-1", label="Rebuild the index", status="in_progress", started_at=now)
    make_record(
        task_name="bad-1",
        label="Import suppliers",
        status="failed",
        error="ValueError: x",
        failed_at=now,
    )
    page = staff_client.get("/tasks/").content.decode()
    assert "Rebuild the index" in page and "Import suppliers" in page


def test_streams_and_locks_name_the_jobs_by_label(staff_client: Any, launch: Any) -> None:
    key = launch(
        "tests.testapp.tasks.add", 1, 2, task_label=LABEL, conflict_ids={"testapp.Project": [7]}
    )
    TaskLogEntry.objects.create(
        task_name=key, level=20, level_name="INFO", logger_name="x", message="hello"
    )
    assert TaskEvent.objects.filter(task_name=key).exists()
    for url in ("/tasks/logs/", "/tasks/events/", "/tasks/locks/"):
        page = staff_client.get(url).content.decode()
        assert f'title="{key}">{LABEL}</a>' in page, url


def test_audit_and_confirmation_name_the_jobs_by_label(staff_client: Any, launch: Any) -> None:
    key = launch("tests.testapp.tasks.slow", 5.0, task_label=LABEL)
    confirm = staff_client.post(
        "/tasks/actions/", {"action": "cancel", "tasks": [key]}
    ).content.decode()
    assert f"{key}</a> · {LABEL}" in confirm
    staff_client.post("/tasks/actions/", {"action": "cancel", "tasks": [key], "confirmed": "1"})
    audit = staff_client.get("/tasks/audit/").content.decode()
    assert f'title="{key}">{LABEL} <span class="pca-key">' in audit


def test_export_carries_the_label(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="a-1", label=LABEL)
    rows = json.loads(b"".join(staff_client.get("/tasks/export/?format=json").streaming_content))
    assert [(row["task_name"], row["label"]) for row in rows] == [("a-1", LABEL)]


@pytest.mark.browser
@pytest.mark.parametrize("size", [(1400, 1000), (480, 900)])
def test_browser_shows_the_label_as_title_with_a_copyable_key(
    browse: Any, make_record: Any, size: tuple[int, int]
) -> None:
    make_record(
        task_name="labelled-job-0001",
        label=LABEL,
        status="failed",
        error="ValueError: x",
        failed_at=timezone.now(),
    )
    page = browse(*size)
    page.goto("/tasks/jobs/")
    link = page.get_by_role("link", name=LABEL)
    link.wait_for(state="visible")
    row = page.locator("tr", has=link)
    assert row.locator(".pca-key").inner_text() == "labelled…"
    assert row.locator(".pca-key").get_attribute("title") == "labelled-job-0001"
    page.goto("/tasks/jobs/labelled-job-0001/")
    heading = page.locator("h1")
    assert heading.inner_text().startswith(LABEL)
    copy = page.get_by_role("button", name="Copy the job id labelled-job-0001")
    copy.wait_for(state="visible")
    assert copy.get_attribute("data-pca-copy") == "labelled-job-0001"
