"""PowerCRUD 0.9.16 code, called as PowerCRUD's docs show it, with ``powercrud.`` changed to
``powercrud_async.``: URL wiring, the completion hook's signature, ``check_conflict``'s answer,
the record's progress column, django-q2's ``sync`` switch, and the rest of the public surface."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import caches
from django.core.checks.urls import check_url_config
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.test.utils import isolate_apps
from django.urls import NoReverseMatch, Resolver404, include, path, resolve, reverse
from django_q.conf import Conf
from django_q.models import OrmQ

from powercrud_async import progress
from powercrud_async.async_context import register_descendant_conflicts, task_context
from powercrud_async.async_dashboard import AsyncDashboardConfig, ModelTrackingAsyncManager
from powercrud_async.async_hooks import task_completion_hook
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import (
    InvalidConflictIds,
    InvalidLaunchOption,
    InvalidProgress,
    InvalidUrlPrefix,
)
from powercrud_async.launch import launch_for_objects
from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.tracking import config as tracking_config
from powercrud_async.tracking import validation
from tests.conftest import wait_until
from tests.testapp.managers import (
    OneArgCompletionManager,
    PowerCrudCompletionManager,
    Recording,
    TrackedManager,
    completion_calls,
)
from tests.testapp.models import AsyncTaskRecord, CustomRecord, Project
from tests.testapp.tasks import TICKED

pytestmark = pytest.mark.django_db(transaction=True)

PROJECTS = "testapp.Project"


def urlconf(*patterns: Any) -> type:
    """A URLconf object for ``ROOT_URLCONF`` (hashable, as Django caches resolvers by it)."""
    return type("URLConf", (), {"urlpatterns": list(patterns)})


def status(key: str) -> str:
    return str(LiveTask.objects.get(task_name=key).status)


@pytest.fixture
def q_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Q_CLUSTER["sync"] = True`` as django-q2 sees it (read once into ``Conf``)."""
    monkeypatch.setattr(Conf, "SYNC", True)


# -- 1. get_urlpatterns() goes straight into urlpatterns ----------------------------------------
def test_get_urlpatterns_as_powercrud_documents_it(settings: Any, client: Any) -> None:
    settings.ROOT_URLCONF = urlconf(AsyncManager.get_urlpatterns(prefix="powercrud/"))
    key = AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2)
    response = client.get("/powercrud/async/progress/", {"task_name": key})
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert reverse("powercrud_async:progress") == "/powercrud/async/progress/"
    assert reverse("powercrud_async:async_progress") == "/powercrud/async/progress/"
    with pytest.raises(Resolver404):  # PowerCRUD's doubled prefix is not reproduced
        resolve("/powercrud/powercrud/async/progress/")


def test_get_urlpatterns_default_prefix_and_custom_prefixes(settings: Any) -> None:
    settings.ROOT_URLCONF = urlconf(AsyncManager.get_urlpatterns())
    assert reverse("powercrud_async:progress") == "/powercrud/async/progress/"
    for prefix, url in (
        ("ops", "/ops/async/progress/"),
        ("/ops/", "/ops/async/progress/"),
        ("", "/async/progress/"),
    ):
        settings.ROOT_URLCONF = urlconf(AsyncManager.get_urlpatterns(prefix=prefix))
        assert reverse("powercrud_async:async_progress") == url


def test_include_forms_keep_working(settings: Any) -> None:
    settings.ROOT_URLCONF = urlconf(path("jobs/", include(AsyncManager.get_urlconf())))
    assert reverse("powercrud_async:progress") == "/jobs/progress/"
    assert reverse("powercrud_async:async_progress") == "/jobs/progress/"
    # The form the README showed before: still the same URL.
    settings.ROOT_URLCONF = urlconf(path("async/", include(AsyncManager.get_urlpatterns())))
    assert reverse("powercrud_async:progress") == "/async/progress/"


def test_mixing_up_the_two_forms_says_what_to_write(settings: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="put it straight into urlpatterns"):
        include(AsyncManager.get_urlpatterns(prefix="powercrud/"))
    settings.ROOT_URLCONF = urlconf(AsyncManager.get_urlconf())
    errors = check_url_config(None)
    assert [e.id for e in errors] == ["powercrud_async.E030"]
    assert "include(AsyncManager.get_urlconf())" in errors[0].msg
    with pytest.raises(ImproperlyConfigured, match="is for include"):
        resolve("/progress/")


@pytest.mark.parametrize("prefix", [3, b"x/", "a<b>/", " x/"])
def test_bad_prefix_is_a_named_error(prefix: Any) -> None:
    with pytest.raises(InvalidUrlPrefix):
        AsyncManager.get_urlpatterns(prefix=prefix)


def test_get_url_and_as_view_keep_powercrud_defaults(settings: Any) -> None:
    pattern = AsyncManager.get_url()
    assert (str(pattern.pattern), pattern.name) == (
        "powercrud/async/progress/",
        "powercrud_async_progress",
    )
    settings.ROOT_URLCONF = urlconf(pattern)
    assert reverse("powercrud_async_progress") == "/powercrud/async/progress/"
    view = AsyncManager.as_view(template_name="myapp/progress.html")
    assert view.view_initkwargs == {"template_name": "myapp/progress.html"}  # type: ignore[attr-defined]
    with pytest.raises(NoReverseMatch):
        reverse("powercrud_async:progress")


# -- 2. handle_task_completion(task, task_name) -------------------------------------------------
def test_completion_overrides_of_either_signature_are_called_by_the_hook(qcluster: Any) -> None:
    """Through a real qcluster: django-q2 calls our hook with its Task, and the hook calls a
    PowerCRUD-style override with ``(task, task_name)`` (on success too) and an older one-argument
    override with ``(task)``; failures still end the task and release its locks."""
    launched = {}
    for manager in (PowerCrudCompletionManager(), OneArgCompletionManager()):
        name = type(manager).__name__
        launched[name, True] = manager.launch_async_task(
            "tests.testapp.tasks.add", 1, 2, conflict_ids={PROJECTS: [len(launched) + 1]}
        )
        launched[name, False] = manager.launch_async_task(
            "tests.testapp.tasks.fail", "nope", conflict_ids={PROJECTS: [len(launched) + 1]}
        )
    qcluster()
    for key in launched.values():
        wait_until(lambda key=key: completion_calls(key) is not None, timeout=60)
    for (name, success), key in launched.items():
        arguments = 2 if name == "PowerCrudCompletionManager" else 1
        assert completion_calls(key) == (success, arguments)
        assert status(key) == ("success" if success else "failed")
    assert not TaskLock.objects.exists()


def test_handle_task_completion_takes_one_or_two_arguments() -> None:
    manager = AsyncManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, conflict_ids={PROJECTS: [9]})
    task = SimpleNamespace(name=key, success=False, result="Task exceeded maximum timeout : tb")
    assert manager.handle_task_completion(task, key) is True  # PowerCRUD's call
    assert status(key) == "failed" and not TaskLock.objects.exists()
    assert manager.handle_task_completion(task) is False  # ours; already finished: nothing to do


def test_hook_skips_managers_without_an_override_on_success() -> None:
    """A plain manager's successful job costs the hook no manager and no query."""
    key = AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2)
    envelope = next(q.args()[0] for q in OrmQ.objects.all() if q.name() == key)
    task = SimpleNamespace(
        func="powercrud_async.runner.run_task", args=(envelope,), name=key, success=True, result=3
    )
    task_completion_hook(task)
    assert status(key) == "pending"  # untouched: the runner owns a successful job's ending


# -- 3. check_conflict returns the given ids -----------------------------------------------------
def test_check_conflict_answers_with_the_ids_as_given() -> None:
    manager = AsyncManager()
    assert manager.add_conflict_ids("holder", {PROJECTS: {1}})
    locked = manager.check_conflict({PROJECTS: [1, 2]})
    assert 1 in locked and locked == {1}
    assert manager.check_conflict({"testapp.project": ["1", "2"]}) == {"1"}
    assert manager.check_conflict({PROJECTS: [2]}) == set()
    assert manager.get_conflict_holders({PROJECTS: [1, 2]}) == {"testapp.project": {"1": "holder"}}
    with pytest.raises(InvalidConflictIds):
        manager.check_conflict({"no-dot": [1]})


# -- 4. the record's progress column -------------------------------------------------------------
def test_progress_column_keeps_the_latest_progress_text() -> None:
    manager = TrackedManager(progress_interval=0)
    key = manager.launch_async_task("tests.testapp.managers.progress_job", 5, sync=True)
    manager.cleanup_completed_tasks()
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert (record.status, record.message) == ("success", "Completed")
    assert record.progress_payload == "step 5/5"  # a text column holds the text, and keeps it
    assert record.percent == 100.0


def test_json_progress_column_holds_text_and_numbers() -> None:
    manager = ModelTrackingAsyncManager(
        record_model_path="testapp.CustomRecord",
        field_map={"task_name": "key", "status": "state", "progress": "output", "result": None},
        progress_interval=0,
    )
    key = manager.launch_async_task("tests.testapp.managers.progress_job", 4, sync=True)
    record = CustomRecord.objects.get(key=key)
    assert record.state == "success"
    assert record.output == {"message": "step 4/4", "current": 4, "total": 4, "percent": 100.0}


def test_progress_without_text_does_not_erase_the_last_text() -> None:
    manager = TrackedManager(progress_interval=0)
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.update_progress(key, "loading rows")
    manager.update_progress(key, "", current=3, total=4)
    progress.outside.flush()  # what its timer does after PROGRESS_WRITE_INTERVAL
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert (record.progress_payload, record.percent) == ("loading rows", 75.0)


def test_progress_update_decorator_reports_under_the_job() -> None:
    manager = TrackedManager(progress_interval=0)
    key = manager.launch_async_task("tests.testapp.tasks.decorated_worker", 3, sync=True)
    assert AsyncTaskRecord.objects.get(task_name=key).progress_payload == "callback 3/3"


# -- 5. django-q2's Q_CLUSTER["sync"] -------------------------------------------------------------
def test_q_cluster_sync_runs_the_job_in_the_caller(q_sync: None) -> None:
    manager = TrackedManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 2, 3, conflict_ids={PROJECTS: [1]})
    assert status(key) == "success" and not OrmQ.objects.exists()
    assert not TaskLock.objects.exists()
    assert AsyncTaskRecord.objects.get(task_name=key).result_payload == 5


def test_an_explicit_launch_option_wins_over_q_cluster_sync(q_sync: None) -> None:
    manager = AsyncManager()
    queued = manager.launch_async_task("tests.testapp.tasks.add", 1, 1, sync=False)
    by_q_options = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 1, q_options={"sync": False}
    )
    assert status(queued) == status(by_q_options) == "pending"
    assert OrmQ.objects.count() == 2


def test_q_options_sync_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Conf, "SYNC", False)
    key = AsyncManager().launch_async_task(
        "tests.testapp.tasks.add", 1, 1, q_options={"sync": True}
    )
    assert status(key) == "success"


def test_failing_sync_job_reraises_after_recording_and_releasing(q_sync: None) -> None:
    manager = TrackedManager()
    key = str(uuid.uuid4())
    with pytest.raises(ValueError, match="nope"):
        manager.launch_async_task(
            "tests.testapp.tasks.fail", "nope", task_key=key, conflict_ids={PROJECTS: [1]}
        )
    row = LiveTask.objects.get(task_name=key)
    assert row.status == "failed" and "ValueError: nope" in row.reason
    assert not TaskLock.objects.exists()
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.status == "failed" and record.failed_at is not None and "nope" in record.error
    assert manager.get_progress(key)["status"] == "failed"


def test_launch_sites_report_a_failed_sync_job_instead_of_raising(q_sync: None) -> None:
    project = Project.objects.create(name="p")
    result = launch_for_objects("tests.testapp.tasks.fail", [project], manager=AsyncManager())
    assert result.task_key is not None and "failed" in result.message
    assert status(result.task_key) == "failed" and not TaskLock.objects.exists()


def test_sync_must_be_a_bool() -> None:
    with pytest.raises(InvalidLaunchOption):
        AsyncManager().launch_async_task(
            "tests.testapp.tasks.add", 1, 1, sync="yes", conflict_ids={PROJECTS: [1]}
        )
    assert not LiveTask.objects.exists() and not TaskLock.objects.exists()


# -- 6. the rest of the surface ------------------------------------------------------------------
def test_settings_attributes_cache_and_status_helpers() -> None:
    manager = AsyncManager()
    assert (manager.cache_name, manager.conflict_ttl, manager.progress_ttl) == (
        "default",
        3600,
        7200,
    )
    assert (manager.cleanup_grace_period, manager.max_task_duration) == (86400, 3600)
    assert (
        manager.cleanup_schedule_interval == 300 and manager.qcluster_settings["orm"] == "default"
    )
    assert manager.get_cache_name() == "default" and manager.cache is caches["default"]
    manager.validate_cache_backend()
    assert uuid.UUID(manager.generate_task_name())
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    assert manager.get_task_status_nowait(key) == "pending" and not manager.is_task_complete(key)
    done = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    assert manager.get_task_status(done) == manager.STATUSES.SUCCESS
    assert manager.is_task_complete(done) and manager.is_task_complete_cache_only(done)


def test_validate_async_system_is_false_when_unhealthy(settings: Any) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "QCLUSTER_PROBE_TIMEOUT_MS": 1}
    health = AsyncManager().validate_async_system()  # no qcluster runs in this test
    assert not health and health["qcluster"] is False and health["cache"] is True


def test_django_q_options_reach_django_q_not_the_worker() -> None:
    key = TrackedManager().launch_async_task(
        "tests.testapp.tasks.echo", 1, save=False, cached=None, broker=None, sync=True, flag=True
    )
    kwargs = AsyncTaskRecord.objects.get(task_name=key).result_payload["kwargs"]
    assert kwargs["flag"] is True and not {"save", "cached", "broker"} & set(kwargs)


def test_powercrud_call_forms_of_locks_and_progress() -> None:
    manager = AsyncManager()
    assert manager.add_conflict_ids("job", {PROJECTS: {1, 2}})
    assert manager.remove_conflict_ids("job", {PROJECTS: {1, 2}}) == 2
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.update_progress(key, "Step 2/3")
    assert manager.get_progress(key)["progress"] == "Step 2/3"
    with pytest.raises(ValueError):  # PowerCRUD raises ValueError for a non-string message
        manager.update_progress(key, {"step": 2})
    assert isinstance(InvalidProgress("x"), TypeError)


def test_async_context_as_powercrud_calls_it() -> None:
    with task_context("parent-job", "powercrud_async.async_manager.AsyncManager"):
        register_descendant_conflicts(PROJECTS, [5, 6])
    assert set(TaskLock.objects.values_list("task_name", "object_pk")) == {
        ("parent-job", "5"),
        ("parent-job", "6"),
    }


def test_async_dashboard_config_with_powercrud_keywords() -> None:
    config = AsyncDashboardConfig(
        record_model_path="testapp.AsyncTaskRecord", field_map={"status": "status"}
    )
    assert config.resolve_field("status", None) == "status"
    assert config.resolve_field("message", "message") == "message"
    manager = ModelTrackingAsyncManager(config)
    assert manager.get_record_model() is AsyncTaskRecord
    assert manager.get_record_model_path() == "testapp.AsyncTaskRecord"
    manager._emit_lifecycle("create", "via-powercrud-name", status="pending", message="Task queued")
    assert AsyncTaskRecord.objects.get(task_name="via-powercrud-name").message == "Task queued"


@isolate_apps("tests.testapp")
def test_powercrud_default_columns_for_args_and_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    class PowerCrudRecord(models.Model):
        task_name = models.CharField(max_length=64, unique=True)
        task_args = models.JSONField(null=True)
        task_kwargs = models.JSONField(null=True)

        class Meta:
            app_label = "testapp"

    monkeypatch.setattr(validation, "_find_model", lambda path: PowerCrudRecord)
    options = tracking_config.options_for(
        ModelTrackingAsyncManager, {"record_model_path": "testapp.X"}
    )
    tracking, problems = validation.analyse(options)
    assert tracking is not None and not problems
    assert (tracking.field_map["args"], tracking.field_map["kwargs"]) == (
        "task_args",
        "task_kwargs",
    )


def test_lifecycle_payloads_carry_powercrud_keys() -> None:
    Recording.events = []
    key = Recording().launch_async_task("tests.testapp.managers.progress_job", 2, sync=True)
    ours = [(event, payload) for event, name, payload in Recording.events if name == key]
    assert [event for event, _ in ours][0] == "create" and ours[-1][0] == "cleanup"
    assert all(isinstance(payload["timestamp"], datetime) for _, payload in ours)
    progress = [payload for event, payload in ours if event == "progress"]
    assert progress[-1]["progress_payload"] == "step 2/2" and progress[-1]["message"] == "step 2/2"


@pytest.mark.django_db(transaction=False)
def test_sync_job_inside_the_callers_transaction_runs_to_its_end(
    q_sync: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a test case's (or ATOMIC_REQUESTS') transaction no other connection sees the job's
    registry row; a ticker thread judged it cancelled (PostgreSQL) or blocked on the open write
    (SQLite). Inline jobs run without one; progress is flushed by the job's own calls."""
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "PROGRESS_WRITE_INTERVAL": 0.01}
    ticker_rounds: list[str] = []
    flush = progress.buffer.flush

    def counting_flush(task_name: str) -> None:
        off_thread = threading.current_thread() is not threading.main_thread()
        if off_thread:
            ticker_rounds.append(task_name)
        flush(task_name)
        if len(ticker_rounds) >= 2:
            TICKED.set()

    monkeypatch.setattr(progress.buffer, "flush", counting_flush)
    TICKED.clear()
    manager = TrackedManager(progress_interval=0)
    key = manager.launch_async_task(
        "tests.testapp.tasks.wait_for_a_tick", conflict_ids={PROJECTS: [1]}
    )
    assert status(key) == "success" and not TaskLock.objects.exists()
    assert ticker_rounds == []
    assert AsyncTaskRecord.objects.get(task_name=key).progress_payload == "after the tick"
