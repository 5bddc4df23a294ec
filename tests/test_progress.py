from __future__ import annotations

import json
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client
from django.urls import reverse

from powercrud_async import progress
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import InvalidProgress, TaskCancelled
from powercrud_async.progress import ProgressSnapshot

pytestmark = pytest.mark.django_db

URL = "/async/progress/"


@pytest.fixture
def users():  # type: ignore[no-untyped-def]
    User = get_user_model()
    return {
        "owner": User.objects.create_user("owner", password="pw"),
        "other": User.objects.create_user("other", password="pw"),
        "staff": User.objects.create_user("staff", password="pw", is_staff=True),
    }


def client_for(user=None) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_url_is_the_documented_one() -> None:
    assert reverse("powercrud_async:progress") == URL
    assert str(AsyncManager.get_url(name="async-progress").pattern) == "powercrud/async/progress/"


def test_missing_task_name_is_400() -> None:
    response = client_for().get(URL)
    assert response.status_code == 400
    assert "task_name" in response.json()["error"]


def test_unknown_task_is_404_not_success() -> None:
    response = client_for().get(URL, {"task_name": "never-existed"})
    assert response.status_code == 404


def test_pending_then_running_then_286(users) -> None:  # type: ignore[no-untyped-def]
    manager = AsyncManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, user=users["owner"])
    client = client_for(users["owner"])
    body = client.get(URL, {"task_name": key}).json()
    assert body["status"] == "pending" and body["task_name"] == key and "user_id" not in body
    manager.update_progress(key, "half way", current=5, total=10)
    response = client.get(URL, {"task_name": key})
    assert response.status_code == 200
    assert response.json()["progress"] == "half way" and response.json()["percent"] == 50.0
    from powercrud_async.models import LiveTask
    from powercrud_async.statuses import TaskStatus

    LiveTask.objects.filter(task_name=key).update(status="in_progress")
    manager.finish(key, TaskStatus.SUCCESS, result=3)
    response = client.get(URL, {"task_name": key})
    assert response.status_code == 286 and response.json()["status"] == "success"


def test_visibility_owner_staff_only(users) -> None:  # type: ignore[no-untyped-def]
    key = AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2, user=users["owner"])
    assert client_for(users["owner"]).get(URL, {"task_name": key}).status_code == 200
    assert client_for(users["staff"]).get(URL, {"task_name": key}).status_code == 200
    assert client_for(users["other"]).get(URL, {"task_name": key}).status_code == 404
    assert client_for().get(URL, {"task_name": key}).status_code == 404


def test_visibility_staff_policy(users, settings) -> None:  # type: ignore[no-untyped-def]
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "PROGRESS_VISIBILITY": "staff"}
    key = AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2, user=users["owner"])
    assert client_for(users["owner"]).get(URL, {"task_name": key}).status_code == 404
    assert client_for(users["staff"]).get(URL, {"task_name": key}).status_code == 200


def test_task_without_user_visible_to_key_holders() -> None:
    key = AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2)
    assert client_for().get(URL, {"task_name": key}).status_code == 200


def test_htmx_fragment_escapes_and_stops(users) -> None:  # type: ignore[no-untyped-def]
    manager = AsyncManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.update_progress(key, "<script>alert(1)</script>", current=1, total=4)
    response = client_for().get(URL, {"task_name": key}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<script>" not in html
    assert "&lt;script&gt;" in html and 'value="25"' in html


def test_running_task_costs_no_sql_of_ours(django_assert_num_queries, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES = {
        **settings.CACHES,
        "fast": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "pca-tests",
        },
    }
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "CACHE_NAME": "fast"}
    progress.write(ProgressSnapshot(task_name="t1", status="in_progress", message="working"))
    client = client_for()
    with django_assert_num_queries(0):
        response = client.get(URL, {"task_name": "t1"})
    assert response.json()["progress"] == "working"


def test_update_progress_validates() -> None:
    manager = AsyncManager()
    with pytest.raises(InvalidProgress):
        manager.update_progress("t", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        manager.update_progress("t", "ok", current="1")  # type: ignore[arg-type]
    assert progress.read("t") is None


def test_late_progress_never_reopens() -> None:
    progress.write(ProgressSnapshot(task_name="t", status="success", message="Completed"))
    AsyncManager().update_progress("t", "late")
    assert progress.read("t").status == "success"  # type: ignore[union-attr]


def test_coalescing_inside_a_job(django_assert_max_num_queries, progress_clock) -> None:  # type: ignore[no-untyped-def]
    """1,000 updates in a running job cost a bounded number of cache writes."""
    cancelled = threading.Event()
    progress.buffer.track(ProgressSnapshot(task_name="busy", status="in_progress"), cancelled)
    events: list[str] = []

    class Recording(AsyncManager):
        def async_task_lifecycle(self, event: str, task_name: str, **payload) -> None:  # type: ignore[no-untyped-def]
            events.append(payload["message"])

    manager = Recording()
    with django_assert_max_num_queries(10):  # the DatabaseCache costs a few statements per write
        for i in range(1000):
            manager.update_progress("busy", f"item {i}", current=i, total=1000)
    assert manager.get_progress("busy")["message"] == "item 999"  # the latest, from the buffer
    assert events == []  # coalesced: nothing is due before PROGRESS_WRITE_INTERVAL has passed
    progress_clock.advance(1.0)
    manager.update_progress("busy", "item 1000", current=1000, total=1000)
    assert events == ["item 1000"]  # due: written at once
    manager.update_progress("busy", "item 999")
    progress.buffer.flush("busy")  # what the runner's ticker does every interval
    assert progress.read("busy").message == "item 999"  # type: ignore[union-attr]
    manager.update_progress("busy", "final")
    progress.buffer.untrack("busy")  # the final state always reaches lifecycle handlers
    assert events[-1] == "final"


def test_cancel_flag_raises_at_next_progress_call() -> None:
    cancelled = threading.Event()
    progress.buffer.track(ProgressSnapshot(task_name="c", status="in_progress"), cancelled)
    manager = AsyncManager()
    manager.update_progress("c", "fine")
    cancelled.set()
    with pytest.raises(TaskCancelled):
        manager.update_progress("c", "stop here")
    progress.buffer.untrack("c")


def test_written_progress_shared_through_cache() -> None:
    progress.write(
        ProgressSnapshot(task_name="x", status="in_progress", message="m", current=1, total=3)
    )
    raw = caches["default"].get(progress.cache_key("x"))
    assert raw["message"] == "m" and raw["updated_at"] <= time.time()
    assert json.dumps(progress.read("x").as_dict())  # type: ignore[union-attr]
