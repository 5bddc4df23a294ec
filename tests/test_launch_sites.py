"""Launch sites: the view mixin, the admin-action helper, and seed 002 section 3's admin action,
management command and regular view (as written, with the import prefix changed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.test import Client, override_settings
from django_q.models import OrmQ

from powercrud_async.async_manager import AsyncManager
from powercrud_async.launch import (
    AsyncMixin,
    LaunchResult,
    async_admin_action,
    launch_for_objects,
    lock_states,
)
from powercrud_async.models import LiveTask, TaskLock
from tests.testapp.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.launch_urls")]

CHANGELIST = "/launch-admin/testapp/project/"


class RecordingManager(AsyncManager):
    events: list[tuple[str, str, dict[str, Any]]] = []

    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        RecordingManager.events.append((event, task_name, payload))


@pytest.fixture(autouse=True)
def _reset_events() -> None:
    RecordingManager.events = []


@pytest.fixture
def projects() -> list[Project]:
    return [Project.objects.create(name=f"p{i}", counter=i % 2) for i in range(1, 5)]


def make_user(*perms: str, username: str = "operator") -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def run_queued() -> list[Any]:
    """Run what is in the ORM broker in this process, through the real runner."""
    from powercrud_async.runner import run_task

    results = []
    for row in OrmQ.objects.order_by("id"):
        results.append(run_task(*row.task["args"]))
        row.delete()
    return results


def locked(key: str) -> set[str]:
    return set(TaskLock.objects.filter(task_name=key).values_list("object_pk", flat=True))


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- seed 002 section 3: admin action (as written) -------------------------------------------------
def test_seed_admin_action_launches_through_the_real_admin(projects: list[Project]) -> None:
    user = make_user("view_project", "change_project")
    client = Client()
    client.force_login(user)
    response = client.post(
        CHANGELIST,
        {
            "action": "rebuild_projects",
            "_selected_action": [projects[0].pk, projects[1].pk],
            "index": 0,
        },
    )
    assert response.status_code == 302
    task = LiveTask.objects.get()
    assert task.user_id == str(user.pk) and task.status == "pending"
    assert locked(task.task_name) == {str(projects[0].pk), str(projects[1].pk)}
    [result] = run_queued()
    assert result["kwargs"]["extra"] == "info"
    task.refresh_from_db()
    assert task.status == "success" and not TaskLock.objects.exists()


def test_seed_admin_action_refuses_overlap_and_changes_nothing(projects: list[Project]) -> None:
    client = Client()
    client.force_login(make_user("view_project", "change_project"))
    data = {"action": "rebuild_projects", "index": 0}
    client.post(CHANGELIST, {**data, "_selected_action": [projects[0].pk, projects[1].pk]})
    first = LiveTask.objects.get().task_name
    with pytest.raises(RuntimeError, match="Another task already processes these projects"):
        client.post(CHANGELIST, {**data, "_selected_action": [projects[1].pk, projects[2].pk]})
    assert LiveTask.objects.count() == 1 and OrmQ.objects.count() == 1
    assert locked(first) == {str(projects[0].pk), str(projects[1].pk)}
    assert not TaskLock.objects.exclude(task_name=first).exists()


# --- seed 002 section 3: management command (as written, on a field testapp has) --------------------
class Command(BaseCommand):
    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        from tests.launch_urls import launch_custom_task

        projects = Project.objects.filter(counter=1)  # the seed filters needs_refresh=True
        launch_custom_task(user=None, affected_objects=projects)


def test_seed_management_command_launch(projects: list[Project]) -> None:
    call_command(Command())
    task = LiveTask.objects.get()
    assert task.user_id is None
    assert locked(task.task_name) == {str(p.pk) for p in projects if p.counter == 1}
    [result] = run_queued()
    assert result["kwargs"]["extra"] == "info"
    assert AsyncManager().get_status(task.task_name) == "success"


# --- seed 002 section 3: regular view (as written) -------------------------------------------------
def test_seed_regular_view_launch(projects: list[Project]) -> None:
    user = make_user()
    client = Client()
    client.force_login(user)
    response = client.get(f"/projects/{projects[2].pk}/rebuild/")
    assert response.status_code == 302 and response["Location"] == "/projects/dashboard/"
    task = LiveTask.objects.get()
    assert task.user_id == str(user.pk)
    assert locked(task.task_name) == {str(projects[2].pk)}
    assert client.get("/projects/999999/rebuild/").status_code == 404
    assert LiveTask.objects.count() == 1


# --- async_admin_action --------------------------------------------------------------------------------
def test_async_admin_action_launches_locked_job_and_reports_the_key(
    projects: list[Project],
) -> None:
    user = make_user("view_project", "change_project")
    client = Client()
    client.force_login(user)
    selected = [projects[0].pk, projects[3].pk]
    response = client.post(
        CHANGELIST,
        {"action": "echo_async", "_selected_action": selected, "index": 0},
        follow=True,
    )
    task = LiveTask.objects.get()
    assert messages_of(response) == [
        f"Started task {task.task_name}: Touch projects in background for 2 projects."
    ]
    assert task.user_id == str(user.pk) and task.func_path == "tests.testapp.tasks.echo"
    assert locked(task.task_name) == {str(pk) for pk in selected}
    [result] = run_queued()
    assert sorted(result["args"][0]) == sorted(selected)
    assert result["kwargs"]["reason"] == "admin"


def test_async_admin_action_refusal_names_the_holding_task(projects: list[Project]) -> None:
    client = Client()
    client.force_login(make_user("view_project", "change_project"))
    data = {"action": "echo_async", "index": 0}
    client.post(
        CHANGELIST, {**data, "_selected_action": [projects[0].pk, projects[1].pk]}, follow=True
    )
    first = LiveTask.objects.get().task_name
    AsyncManager().update_progress(first, "halfway", current=1, total=4)
    response = client.post(
        CHANGELIST,
        {**data, "_selected_action": [projects[1].pk, projects[2].pk]},
        follow=True,
    )
    [message] = messages_of(response)
    assert message == (
        f"Not started: project {projects[1].pk} locked by task {first}, 25%. "
        "Try again when that task has finished."
    )
    assert LiveTask.objects.count() == 1 and OrmQ.objects.count() == 1
    assert locked(first) == {str(projects[0].pk), str(projects[1].pk)}


def test_async_admin_action_needs_its_permission(projects: list[Project]) -> None:
    client = Client()
    client.force_login(make_user("view_project"))
    response = client.post(
        CHANGELIST,
        {"action": "echo_async", "_selected_action": [projects[0].pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    assert "No action selected." in messages_of(response)
    assert not LiveTask.objects.exists() and not TaskLock.objects.exists()


def test_async_admin_action_is_a_named_admin_action() -> None:
    action = async_admin_action("tests.testapp.tasks.echo", description="Echo", name="echo_them")
    assert action.__name__ == "echo_them"
    assert action.short_description == "Echo"  # type: ignore[attr-defined]
    assert action.allowed_permissions == ("change",)  # type: ignore[attr-defined]


# --- AsyncMixin ----------------------------------------------------------------------------------------
def test_mixin_view_forwards_its_manager_through_the_launch(projects: list[Project]) -> None:
    user = make_user()
    client = Client()
    client.force_login(user)
    response = client.post("/projects/bulk/", {"selected": [projects[0].pk, projects[1].pk]})
    assert response.status_code == 202
    key = response.json()["task_key"]
    assert response.json()["message"] == f"Started task {key}: bulk touch for 2 projects."
    task = LiveTask.objects.get(task_name=key)
    assert task.manager_class == "tests.test_launch_sites.RecordingManager"
    assert task.manager_config == {"source": "bulk-view"}
    assert task.user_id == str(user.pk)
    [result] = run_queued()
    assert result["kwargs"]["manager_class"] == "tests.test_launch_sites.RecordingManager"
    assert [e for e, k, _ in RecordingManager.events if k == key] == [
        "create",
        "start",
        "complete",
        "cleanup",
    ]
    create = RecordingManager.events[0][2]
    assert create["affected_objects"] == ["p1", "p2"] and create["user"] == user


def test_mixin_view_refuses_overlap_with_a_clear_message(projects: list[Project]) -> None:
    client = Client()
    client.force_login(make_user())
    first = client.post("/projects/bulk/", {"selected": [projects[0].pk]}).json()["task_key"]
    response = client.post("/projects/bulk/", {"selected": [projects[0].pk, projects[1].pk]})
    assert response.status_code == 409
    body = response.json()
    assert body["task_key"] is None
    assert body["conflicts"] == {"testapp.project": {str(projects[0].pk): first}}
    assert body["message"] == (
        f"Not started: project {projects[0].pk} locked by task {first}, queued. "
        "Try again when that task has finished."
    )
    assert LiveTask.objects.count() == 1


def test_mixin_manager_resolution() -> None:
    class Plain(AsyncMixin):
        pass

    class Explicit(AsyncMixin):
        async_manager_class_path = "tests.test_launch_sites.RecordingManager"

    class Wrong(AsyncMixin):
        async_manager_class_path = "tests.testapp.tasks.echo"

    assert Plain().get_async_manager_class() is AsyncManager
    assert Explicit().get_async_manager_class() is RecordingManager
    assert isinstance(Explicit().get_async_manager(), RecordingManager)
    with pytest.raises(TypeError, match="not an AsyncManager subclass"):
        Wrong().get_async_manager_class()
    default = {"manager_class": "tests.test_launch_sites.RecordingManager", "config": {"a": 1}}
    with override_settings(POWERCRUD_SETTINGS={"ASYNC_MANAGER_DEFAULT": default}):
        assert Plain().get_async_manager_class() is RecordingManager
        assert Plain().get_async_manager().config == {"a": 1}
        assert Explicit().get_async_manager().config == {"a": 1}  # same class: default config


# --- launch_for_objects and lock_states -----------------------------------------------------------------
def test_launch_for_objects_accepts_pks_with_a_conflict_model(projects: list[Project]) -> None:
    with pytest.raises(TypeError, match="conflict_model"):
        launch_for_objects("tests.testapp.tasks.echo", [projects[0].pk])
    result = launch_for_objects(
        "tests.testapp.tasks.echo",
        [projects[0].pk, str(projects[0].pk), projects[1].pk],
        conflict_model="testapp.Project",
    )
    assert result.ok and result.count == 2
    assert locked(result.task_key or "") == {str(projects[0].pk), str(projects[1].pk)}


def test_empty_selection_launches_nothing() -> None:
    result = launch_for_objects("tests.testapp.tasks.echo", Project.objects.none())
    assert result == LaunchResult(
        task_key=None, message="No projects selected; nothing was started."
    )
    assert not result.ok and not LiveTask.objects.exists()


def test_lock_states_say_who_holds_each_row(projects: list[Project]) -> None:
    manager = AsyncManager()
    key = launch_for_objects("tests.testapp.tasks.echo", projects[:2], manager=manager).task_key
    assert key
    states = lock_states("testapp.Project", [p.pk for p in projects], manager)
    assert set(states) == {str(projects[0].pk), str(projects[1].pk)}
    assert str(states[str(projects[0].pk)]) == f"locked by task {key}, queued"
    manager.update_progress(key, "busy", current=7, total=20)
    state = lock_states(Project, [projects[0].pk], manager)[str(projects[0].pk)]
    assert (state.task_key, state.percent, state.message) == (key, 35.0, "busy")
    assert str(state) == f"locked by task {key}, 35%"


def test_async_disabled_runs_the_job_in_the_request(projects: list[Project], settings: Any) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "ASYNC_ENABLED": False}

    class View(AsyncMixin):
        model = Project

    view = View()
    result = view.launch_async("tests.testapp.tasks.echo", [projects[0]])
    assert result.ok and result.message.startswith(
        f"Ran task {result.task_key}: echo for 1 project"
    )
    assert LiveTask.objects.get(task_name=result.task_key).status == "success"
    assert not OrmQ.objects.exists() and not TaskLock.objects.exists()
    failed = view.launch_async("tests.testapp.tasks.fail", [projects[1]], pass_ids=False)
    assert failed.message == f"Task {failed.task_key} failed: ValueError: boom"
    assert LiveTask.objects.get(task_name=failed.task_key).status == "failed"
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "ASYNC_ENABLED": True}
    queued = view.launch_async("tests.testapp.tasks.echo", [projects[2]])
    assert queued.message.startswith(f"Started task {queued.task_key}")
    assert OrmQ.objects.count() == 1
