"""Acting from the attacker's side: a view-only staff user at an admin action, a bulk action over
a job that breaks, refused requests that try to flood the audit trail, and a release the page
does not offer."""

from __future__ import annotations

import pickle
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.utils import timezone

from powercrud_async.async_manager import AsyncManager
from powercrud_async.callables import sign_blob
from powercrud_async.dashboard import audit
from powercrud_async.launch import async_admin_action
from powercrud_async.models import AuditEntry, LiveTask, TaskLock
from powercrud_async.statuses import TaskStatus
from tests.dashboard.conftest import client_for, user
from tests.testapp.models import AsyncTaskRecord, Project

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

ACT = "/tasks/actions/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "pca-flash"}


def fail(key: str) -> None:
    AsyncManager.resolve_manager(LiveTask.objects.get(task_name=key).manager_class).finish(
        key, TaskStatus.FAILED, error="ValueError: boom", reason="ValueError: boom"
    )


# -- 3: admin actions need the change permission by default -------------------------------------------
class ProjectAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    actions = [async_admin_action("tests.testapp.tasks.echo", description="Touch projects")]


def staff_with(*codenames: str, username: str) -> Any:
    account = user(username, is_staff=True)
    for codename in codenames:
        account.user_permissions.add(Permission.objects.get(codename=codename))
    return type(account).objects.get(pk=account.pk)  # fresh permission cache


def test_view_only_staff_cannot_launch_an_admin_action() -> None:
    Project.objects.create(name="p1")
    model_admin = ProjectAdmin(Project, admin.AdminSite(name="security"))
    request = RequestFactory().post("/")
    request.user = staff_with("view_project", username="viewer")
    assert "echo_async" not in model_admin.get_actions(request)
    action = ProjectAdmin.actions[0]
    with pytest.raises(PermissionDenied):
        action(model_admin, request, Project.objects.all())
    assert not LiveTask.objects.exists() and not TaskLock.objects.exists()
    request.user = staff_with("view_project", "change_project", username="editor")
    assert "echo_async" in model_admin.get_actions(request)


# -- 5: one broken key never hides the others, and the audit entry is always written -------------------
class RemovedInALaterDeploy:
    pass


def test_a_job_that_breaks_in_a_bulk_action_is_reported_and_audited(
    staff_client: Any, launch: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    broken = launch("tests.testapp.tasks.add", 1, 1)
    fine = launch("tests.testapp.tasks.add", 2, 2)
    fail(broken)
    fail(fine)
    LiveTask.objects.filter(task_name=broken).update(
        call=sign_blob(pickle.dumps(((RemovedInALaterDeploy(),), {})))
    )
    monkeypatch.delattr(sys.modules[__name__], "RemovedInALaterDeploy")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(ACT, {"action": "retry", "tasks": [broken, fine]}, **HTMX)
    assert response.status_code == 200
    lines = {line["key"]: line for line in response.context["lines"]}
    assert lines[broken]["result"] == "error" and "AttributeError" in lines[broken]["detail"]
    assert lines[fine]["result"] == "done" and lines[fine]["new_key"]
    entry = AuditEntry.objects.get()
    assert entry.outcome == "Retried 1 job, 1 error."
    assert [(key, result) for key, result, _ in entry.results] == [
        (broken, "error"),
        (fine, "done"),
    ]


def test_the_audit_entry_is_written_when_an_action_fails_outright(
    staff_client: Any, make_record: Any, monkeypatch: Any
) -> None:
    make_record(task_name="old-1", status="failed")

    def broken_store(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("store down")

    monkeypatch.setattr("powercrud_async.dashboard.actions.get_store", broken_store)
    with pytest.raises(RuntimeError):
        staff_client.post(ACT, {"action": "delete", "tasks": ["old-1"], "confirmed": "1"}, **HTMX)
    entry = AuditEntry.objects.get()
    assert entry.outcome == "Failed: RuntimeError: store down" and entry.targets == ["old-1"]


# -- 6: refused attempts cannot flood the audit trail -------------------------------------------------
def test_refused_attempts_are_bounded_and_folded(dashboard_settings: Any) -> None:
    dashboard_settings(ACTION_ACCESS="superuser")
    viewer = client_for(user("viewer", is_staff=True))
    for n in range(5):
        response = viewer.post(
            ACT, {"action": "delete", "tasks": [f"{n}" + "x" * 40_000], "confirmed": "1"}
        )
        assert response.status_code == 403
    entry = AuditEntry.objects.get()
    assert entry.repeats == 5 and entry.refused == 5 and entry.outcome.endswith("(refused 5 times)")
    stored = len(str(entry.targets)) + len(entry.outcome) + len(str(entry.results))
    assert stored < 3_000  # 200 kB were posted
    assert all(len(key) <= audit.MAX_KEY_LENGTH for key in entry.targets)


def test_a_flood_of_keys_is_bounded(staff_client: Any) -> None:
    keys = [f"k{n:03d}-" + "y" * 90 for n in range(500)]
    staff_client.post(
        ACT, {"action": "delete", "tasks": [*keys, "z" * 40_000], "confirmed": "1"}, **HTMX
    )
    entry = AuditEntry.objects.get()
    assert len(entry.targets) <= 101 and len(entry.results) <= 100
    assert all(len(key) <= 255 for key in entry.targets)
    assert len(str(entry.targets)) + len(str(entry.results)) < 100_000
    page = staff_client.get("/tasks/audit/")
    assert len(page.content) < 200_000


def test_the_audit_page_paginates(staff_client: Any) -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(username="ops", user_id="1", action="cancel", targets=[f"t{n}"], outcome="ok")
        for n in range(120)
    )
    page = staff_client.get("/tasks/audit/")
    assert len(page.context["entries"]) == 50 and page.context["next_url"].endswith("page=2")


# -- 7: the server refuses what the page does not offer ------------------------------------------------
def test_releasing_a_live_reservation_is_refused(staff_client: Any) -> None:
    now = timezone.now()
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="1",
        task_name="reserved",
        expires_at=now + timedelta(minutes=30),
    )
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="2",
        task_name="lapsed",
        expires_at=now - timedelta(minutes=1),
    )
    rows = {r["task"]: r for r in staff_client.get("/tasks/locks/").context["rows"]}
    assert rows["reserved"]["alive"] and not rows["lapsed"]["alive"]  # what the page offers
    response = staff_client.post(
        ACT, {"action": "release", "tasks": ["reserved", "lapsed"], "confirmed": "1"}, **HTMX
    )
    results = {line["key"]: line["result"] for line in response.context["lines"]}
    assert results == {"reserved": "refused", "lapsed": "done"}
    assert list(TaskLock.objects.values_list("task_name", flat=True)) == ["reserved"]


def test_deleting_a_live_job_is_refused(staff_client: Any, launch: Any) -> None:
    key = launch("tests.testapp.tasks.slow", 5.0)
    response = staff_client.post(
        ACT, {"action": "delete", "tasks": [key], "confirmed": "1"}, **HTMX
    )
    assert response.context["lines"][0]["result"] == "refused"
    assert AsyncTaskRecord.objects.filter(task_name=key).exists()
