"""Ownership from the attacker's side: another user who takes over a username, a user who may
only see their own jobs looking at the global pages, and a staff retry of someone else's job.

Ownership is the stored user id; the label is display only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from powercrud_async import progress
from powercrud_async.async_manager import AsyncManager
from powercrud_async.models import LiveTask, TaskEvent, TaskLock
from powercrud_async.statuses import TaskStatus
from tests.dashboard.conftest import client_for, user
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

SECRET_ARG = "alice-private-argument"


@pytest.fixture
def own_only(dashboard_settings: Any) -> None:
    dashboard_settings(
        VIEW_ACCESS="authenticated", ACTION_ACCESS="authenticated", OWN_TASKS_ONLY=True
    )


def body(response: Any) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode()


def test_a_launch_records_the_owner_id(launch: Any) -> None:
    alice = user("alice")
    key = launch("tests.testapp.tasks.add", 1, 2, user=alice)
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert (record.user_label, record.user_pk) == ("alice", str(alice.pk))


def test_a_new_account_with_an_old_username_gets_nothing(own_only: None, launch: Any) -> None:
    alice = user("alice")
    key = launch("tests.testapp.tasks.add", 1, 2, user=alice, task_kwargs={"note": SECRET_ARG})
    progress.write(
        progress.ProgressSnapshot(
            task_name=key,
            status=TaskStatus.IN_PROGRESS,
            message="alice is at row 7",
            user_id=str(alice.pk),
        )
    )
    alice.username = "alice-renamed"
    alice.save()
    mallory = client_for(user("alice"))  # registers the freed name

    assert key not in body(mallory.get("/tasks/jobs/"))
    assert mallory.get(f"/tasks/jobs/{key}/").status_code == 404
    assert mallory.get(f"/tasks/progress/?task_name={key}").status_code == 404
    assert key not in body(mallory.get("/tasks/export/?format=csv"))
    assert key not in body(mallory.get("/tasks/export/?format=json"))
    mallory.post(
        "/tasks/actions/",
        {"action": "delete", "tasks": [key], "confirmed": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert AsyncTaskRecord.objects.filter(task_name=key).exists()

    # the real owner still sees it, progress included, after the rename
    owner = client_for(alice)
    detail = body(owner.get(f"/tasks/jobs/{key}/"))
    assert SECRET_ARG in detail and "alice is at row 7" in detail


def test_a_label_that_looks_like_the_viewer_is_not_ownership(
    own_only: None, make_record: Any
) -> None:
    mallory = user("mallory")
    make_record(task_name="forged", user_label="mallory", user_pk="not-mallory")
    client = client_for(mallory)
    assert "forged" not in body(client.get("/tasks/jobs/"))
    assert client.get("/tasks/jobs/forged/").status_code == 404


def test_the_detail_page_does_not_show_someone_elses_cached_progress(make_record: Any) -> None:
    """Even where a record is visible, the progress cache answers only its owner or staff."""
    bob = user("bob")
    make_record(task_name="shared", user_label="", status="in_progress")
    progress.write(
        progress.ProgressSnapshot(
            task_name="shared",
            status=TaskStatus.IN_PROGRESS,
            message="bob's private step",
            user_id="424242",
        )
    )
    viewer = client_for(bob)
    from django.test import override_settings

    with override_settings(
        POWERCRUD_SETTINGS={
            "ASYNC_MANAGER_DEFAULT": {"manager_class": "tests.dashboard.managers.DashboardManager"},
            "DASHBOARD": {"VIEW_ACCESS": "authenticated"},
        }
    ):
        html = body(viewer.get("/tasks/jobs/shared/"))
    assert "bob&#x27;s private step" not in html and "bob's private step" not in html


@pytest.fixture
def someone_elses_stuck_job(make_record: Any) -> str:
    now = timezone.now()
    make_record(
        task_name="bob-stuck",
        user_label="bob",
        user_pk="999",
        status="in_progress",
        func_path="payroll.tasks.run_bonus",
        started_at=now - timedelta(hours=1),
    )
    LiveTask.objects.create(
        task_name="bob-stuck",
        status="in_progress",
        created_at=now - timedelta(hours=1),
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(minutes=30),
        user_id="999",
    )
    TaskLock.objects.create(
        model_label="testapp.secretmodel",
        object_pk="1",
        task_name="bob-stuck",
        expires_at=now + timedelta(hours=1),
    )
    return "bob-stuck"


def test_overview_shows_an_own_only_user_nothing_of_others(
    own_only: None, someone_elses_stuck_job: str, staff_client: Any
) -> None:
    response = client_for(user("alice")).get("/tasks/")
    o = response.context["overview"]
    assert o.stuck == [] and (o.locks, o.lock_owners) == (0, 0)
    assert o.queue_depth is None and o.clusters == []
    assert someone_elses_stuck_job not in body(response)
    # global figures are left out, not shown as misleading zeros
    for figure in ("Locks held", "Worker health", "Queue depth", "no django-q2 cluster reporting"):
        assert figure not in body(response)
    # those who see everything still do
    response = staff_client.get("/tasks/")
    o = response.context["overview"]
    assert [s.stuck.task_name for s in o.stuck] == ["bob-stuck"] and o.locks == 1
    assert "Locks held" in body(response) and "Worker health" in body(response)


def test_locks_and_list_show_an_own_only_user_nothing_of_others(
    own_only: None, someone_elses_stuck_job: str
) -> None:
    alice = client_for(user("alice"))
    locks = alice.get("/tasks/locks/")
    assert locks.context["labels"] == [] and locks.context["total"] == 0
    assert "secretmodel" not in body(locks) and someone_elses_stuck_job not in body(locks)
    asked = alice.get("/tasks/locks/?model=testapp.secretmodel&pk=1")
    assert asked.context["answer"] == "None of your jobs holds testapp.secretmodel 1."
    listed = alice.get("/tasks/jobs/")
    assert listed.context["stuck_count"] == 0


def test_a_staff_retry_keeps_the_owner(
    own_only: None, launch: Any, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alice = user("alice")
    key = launch("tests.testapp.tasks.add", 2, 3, user=alice)
    AsyncManager.resolve_manager(LiveTask.objects.get(task_name=key).manager_class).finish(
        key, TaskStatus.FAILED, error="ValueError: boom", reason="ValueError: boom"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(staff).post(
            "/tasks/actions/", {"action": "retry", "tasks": [key]}, HTTP_HX_REQUEST="true"
        )
    new_key = response.context["lines"][0]["new_key"]
    record = AsyncTaskRecord.objects.get(task_name=new_key)
    assert (record.user_label, record.user_pk) == ("alice", str(alice.pk))
    assert LiveTask.objects.get(task_name=new_key).user_id == str(alice.pk)
    assert TaskEvent.objects.filter(
        task_name=new_key, event="retry", message__contains="by ops"
    ).exists()
    assert new_key in body(client_for(alice).get("/tasks/jobs/"))  # she still sees her job


def test_a_retry_of_a_deleted_users_job_is_refused(launch: Any, staff_client: Any) -> None:
    ghost = user("ghost")
    key = launch("tests.testapp.tasks.add", 2, 3, user=ghost)
    AsyncManager.resolve_manager(LiveTask.objects.get(task_name=key).manager_class).finish(
        key, TaskStatus.FAILED, error="ValueError: boom", reason="ValueError: boom"
    )
    ghost.delete()
    response = staff_client.post(
        "/tasks/actions/", {"action": "retry", "tasks": [key]}, HTTP_HX_REQUEST="true"
    )
    assert (
        response.context["summary"]
        == f"Refused to retry {key}: the user who launched it no longer exists."
    )
    assert LiveTask.objects.count() == 1
