"""ModelTrackingAsyncManager: configuration (three ways and the settings default), accessors,
system checks, formatting hooks, and the seed examples as written."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import pickle
import uuid
from collections.abc import Iterable
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core import checks as django_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django_q.models import OrmQ
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from powercrud_async.async_dashboard import AsyncDashboardConfig, ModelTrackingAsyncManager
from powercrud_async.async_hooks import task_completion_hook
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import InvalidFieldMap
from powercrud_async.models import LiveTask, TaskEvent
from powercrud_async.payloads import json_safe
from powercrud_async.tracking import sql
from tests.testapp import managers
from tests.testapp.managers import CustomFieldsManager, NotifyingAsyncManager, TrackedManager
from tests.testapp.models import AsyncTaskRecord, CustomRecord, MinimalRecord, Project

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOM_MAP = {
    "task_name": "key",
    "status": "state",
    "message": "note",
    "user": "who",
    "result": "output",
    "completed_at": "done_at",
}


@pytest.fixture(autouse=True)
def no_notifications() -> None:
    managers.NOTIFIED.clear()


def ids(messages: Iterable[Any]) -> list[str]:
    return [m.id for m in messages]


# -- configuration three ways ------------------------------------------------------------------
def test_class_attributes() -> None:
    key = TrackedManager().launch_async_task("tests.testapp.tasks.add", 2, 3, sync=True)
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert (record.status, record.message, record.result_payload) == ("success", "Completed", 5)
    assert record.args_payload == [2, 3] and record.kwargs_payload == {}
    assert record.func_path == "tests.testapp.tasks.add"
    assert record.started_at <= record.completed_at and record.duration is not None
    assert record.cleaned_up is True


def test_constructor_keywords_travel_to_the_worker() -> None:
    manager = ModelTrackingAsyncManager(
        record_model_path="testapp.CustomRecord", field_map=CUSTOM_MAP
    )
    assert manager.config == {"record_model_path": "testapp.CustomRecord", "field_map": CUSTOM_MAP}
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 1, sync=True)
    # The runner rebuilt the manager from the envelope: start and complete landed here too.
    record = CustomRecord.objects.get(key=key)
    assert (record.state, record.note, record.output) == ("success", "Completed", 2)
    assert record.done_at is not None
    assert LiveTask.objects.get(task_name=key).manager_config == manager.config
    assert not AsyncTaskRecord.objects.exists()


def test_config_object_is_reduced_to_plain_data() -> None:
    config = AsyncDashboardConfig(
        record_model=CustomRecord,
        field_map=CUSTOM_MAP,
        create_defaults={"note": "created"},
        format_user=managers.shout,
        progress_interval=0.5,
        timeline=False,
    )
    manager = ModelTrackingAsyncManager(config)
    assert manager.config == {
        "record_model_path": "testapp.CustomRecord",
        "field_map": CUSTOM_MAP,
        "create_defaults": {"note": "created"},
        "format_user": "tests.testapp.managers.shout",
        "progress_interval": 0.5,
        "timeline": False,
    }
    assert json.loads(json.dumps(manager.config)) == manager.config
    assert pickle.loads(pickle.dumps(manager.config)) == manager.config
    alice = User.objects.create(username="alice")
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True, user=alice)
    record = CustomRecord.objects.get(key=key)
    assert (record.who, record.state, record.output) == ("ALICE", "success", 3)
    assert not TaskEvent.objects.filter(task_name=key).exists()  # timeline=False
    # The keyword form takes the object too.
    assert ModelTrackingAsyncManager(config=config).config == manager.config


def test_config_object_refuses_what_cannot_travel() -> None:
    with pytest.raises(TypeError, match="module-level function"):
        AsyncDashboardConfig(
            record_model="testapp.CustomRecord", format_user=lambda u: "x"
        ).as_config()
    with pytest.raises(TypeError, match="plain data"):
        ModelTrackingAsyncManager(
            record_model_path="testapp.AsyncTaskRecord", create_defaults={"message": object()}
        )


def test_settings_default_reaches_launcher_worker_hook_and_cleanup() -> None:
    default = {
        "manager_class": "powercrud_async.async_dashboard.ModelTrackingAsyncManager",
        "config": {"record_model_path": "testapp.CustomRecord", "field_map": CUSTOM_MAP},
    }
    with override_settings(POWERCRUD_SETTINGS={"ASYNC_MANAGER_DEFAULT": default}):
        manager = AsyncManager.resolve_manager()
        assert isinstance(manager, ModelTrackingAsyncManager)
        assert manager.get_record_model() is CustomRecord
        # Worker path (sync runs the runner in this process, rebuilt from the envelope).
        ran = manager.launch_async_task("tests.testapp.tasks.add", 4, 4, sync=True)
        assert CustomRecord.objects.get(key=ran).output == 8
        # Hook path: the job is queued; its worker was killed on a timeout, so only django-q2's
        # hook reports the outcome (a failure: on success the runner has finished it already).
        queued = AsyncManager.resolve_manager().launch_async_task("tests.testapp.tasks.add", 1, 1)
        row = OrmQ.objects.get()
        assert CustomRecord.objects.get(key=queued).state == "pending"
        fake = mock.Mock(
            func=row.func(),
            args=row.args(),
            success=False,
            result="Task exceeded maximum timeout value (5 seconds) : traceback",
        )
        fake.name = queued
        task_completion_hook(fake)
        record = CustomRecord.objects.get(key=queued)
        assert record.state == "failed" and "maximum timeout" in str(record.output)
        # Cleanup command resolves the same manager.
        call_command("pcrud_cleanup_async", "--json", stdout=mock.Mock())


# -- accessors ------------------------------------------------------------------------------------
def test_accessors() -> None:
    manager = TrackedManager()
    assert manager.get_record_model() is AsyncTaskRecord
    field_map = manager.get_field_map()
    assert field_map["user"] == "user_label" and field_map["cleaned"] == "cleaned_up"
    assert field_map["error"] == "error" and field_map["traceback"] == "traceback"
    assert "reason" not in field_map  # no such column: skipped
    custom = CustomFieldsManager().get_field_map()
    assert custom == {
        "task_name": "key",
        "status": "state",
        "message": "note",
        "user": "who",
        "result": "output",
        "completed_at": "done_at",
    }
    assert MinimalRecord in (
        ModelTrackingAsyncManager(record_model_path="testapp.MinimalRecord").get_record_model(),
    )
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    assert manager.get_record(key).status == "pending"
    assert manager.get_record("nope") is None
    assert [e.event for e in manager.get_timeline(key)] == ["create"]


def test_misconfigured_accessors_raise_clearly_and_events_never_do(caplog: Any) -> None:
    broken = ModelTrackingAsyncManager(record_model_path="testapp.Nope")
    with pytest.raises(InvalidFieldMap, match="testapp.Nope"):
        broken.get_record_model()
    key = broken.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    assert LiveTask.objects.get(task_name=key).status == "success"
    assert "testapp.Nope" in caplog.text


def test_field_map_none_switches_a_default_off() -> None:
    manager = ModelTrackingAsyncManager(
        record_model_path="testapp.AsyncTaskRecord", field_map={"args": None, "user": None}
    )
    assert "args" not in manager.get_field_map() and "user" not in manager.get_field_map()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    assert AsyncTaskRecord.objects.get(task_name=key).args_payload is None


def test_minimal_model_only_needs_task_name() -> None:
    manager = managers.MinimalManager()
    assert manager.get_field_map() == {"task_name": "task_name"}
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    assert MinimalRecord.objects.filter(task_name=key).count() == 1
    assert manager.check_configuration(None) == []


# -- system checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "expected", "words"),
    [
        ({}, ["powercrud_async.E020"], ["no record model"]),
        ({"record_model_path": "testapp.Nope"}, ["powercrud_async.E021"], ["testapp.Nope"]),
        ({"record_model_path": "nodots"}, ["powercrud_async.E021"], ["nodots"]),
        (
            {"record_model_path": "testapp.CustomRecord"},
            ["powercrud_async.E022"],
            ["testapp.CustomRecord", "'task_name'"],
        ),
        (
            {
                "record_model_path": "testapp.CustomRecord",
                "field_map": {**CUSTOM_MAP, "message": "notes"},
            },
            ["powercrud_async.E023"],
            ["testapp.CustomRecord", "'notes'", "'message'"],
        ),
        (
            {"record_model_path": "testapp.AsyncTaskRecord", "field_map": ["status"]},
            ["powercrud_async.E024"],
            ["field_map"],
        ),
        (
            {"record_model_path": "testapp.AsyncTaskRecord", "create_defaults": {"colour": "red"}},
            ["powercrud_async.E023"],
            ["'colour'"],
        ),
        (
            {"record_model_path": "testapp.AsyncTaskRecord", "format_user": "tests.nowhere.fmt"},
            ["powercrud_async.E024"],
            ["tests.nowhere.fmt"],
        ),
        (
            {"record_model_path": "testapp.AsyncTaskRecord", "progress_interval": -1},
            ["powercrud_async.E024"],
            ["progress_interval"],
        ),
        (
            {"record_model_path": "testapp.AsyncTaskRecord", "timeline": "yes"},
            ["powercrud_async.E024"],
            ["timeline"],
        ),
        ({"record_model_path": "testapp.AsyncTaskRecord"}, [], []),
    ],
)
def test_check_configuration(config: dict[str, Any], expected: list[str], words: list[str]) -> None:
    messages = ModelTrackingAsyncManager.check_configuration(config)
    assert ids(messages) == expected
    for message in messages:
        assert message.hint
    text = " ".join(f"{m.msg} {m.hint}" for m in messages)
    for word in words:
        assert word in text


def test_check_suggests_the_nearest_column() -> None:
    (message,) = ModelTrackingAsyncManager.check_configuration(
        {
            "record_model_path": "testapp.CustomRecord",
            "field_map": {**CUSTOM_MAP, "message": "notes"},
        }
    )
    assert "Did you mean 'note'?" in message.hint


def test_settings_default_is_checked_at_startup() -> None:
    default = {
        "manager_class": "tests.testapp.managers.CustomFieldsManager",
        "config": {"field_map": {"message": "remark"}},
    }
    with override_settings(POWERCRUD_SETTINGS={"ASYNC_MANAGER_DEFAULT": default}):
        found = [
            m for m in django_checks.run_checks() if m.id and m.id.startswith("powercrud_async.E02")
        ]
        assert ids(found) == ["powercrud_async.E023"]
        assert "testapp.CustomRecord" in found[0].msg and "'remark'" in found[0].msg
        with pytest.raises(SystemCheckError, match="E023"):
            call_command("check")


# -- formatting hooks ----------------------------------------------------------------------------------
def test_default_formatters() -> None:
    manager = TrackedManager()
    alice = User(username="alice")
    assert manager.format_user(alice) == "alice"
    assert manager.format_user(AnonymousUser()) == ""
    assert manager.format_user(None) == ""
    assert manager.format_user("bob") == "bob"
    assert manager.format_affected(["a", 1]) == "a, 1"
    assert manager.format_affected({"b", "a"}) == "a, b"
    assert manager.format_affected("one thing") == "one thing"
    assert manager.format_affected(None) == ""
    assert manager.format_affected(Project(name="Alpha")) == "Alpha"
    assert manager.format_affected({"testapp.Project": [1, 2]}) == "testapp.Project: 1, 2"
    assert manager.format_objects(["x", "y"]) == "x, y"


class AffectedOverride(TrackedManager):
    def format_affected(self, affected: Any) -> str:
        return f"A:{len(affected)}"


class ObjectsOverride(TrackedManager):
    def format_objects(self, objects: Any) -> str:
        return f"O:{len(objects)}"


class BothOverride(TrackedManager):
    def format_affected(self, affected: Any) -> str:
        return "both:" + super().format_affected(affected)

    def format_objects(self, objects: Any) -> str:
        return "objs:" + super().format_objects(objects)


@pytest.mark.parametrize(("cls", "expected"), [(AffectedOverride, "A:2"), (ObjectsOverride, "O:2")])
def test_either_affected_override_works(cls: type[TrackedManager], expected: str) -> None:
    manager = cls()
    assert manager.format_affected(["a", "b"]) == expected
    assert manager.format_objects(["a", "b"]) == expected
    key = cls().launch_async_task("tests.testapp.tasks.add", 1, 2, affected_objects=["a", "b"])
    assert AsyncTaskRecord.objects.get(task_name=key).affected_objects == expected


def test_both_overrides_calling_super_do_not_loop() -> None:
    assert BothOverride().format_affected(["a"]) == "both:a"
    assert BothOverride().format_objects(["a"]) == "objs:a"


def test_config_formatters() -> None:
    manager = ModelTrackingAsyncManager(
        record_model_path="testapp.AsyncTaskRecord",
        format_affected="tests.testapp.managers.shout",
        format_payload="tests.testapp.managers.tagged_payload",
    )
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, affected_objects="x", sync=True
    )
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.affected_objects == "X"
    assert record.result_payload == {"tagged": 3}
    assert record.args_payload == {"tagged": [1, 2]}


class Thing:
    def __str__(self) -> str:
        return "a thing"


def test_payloads_become_json_safe_and_readable() -> None:
    project = Project.objects.create(name="Alpha")
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    manager = TrackedManager()
    key = manager.launch_async_task(
        "tests.testapp.tasks.echo",
        when,
        decimal.Decimal("1.10"),
        ident,
        {3, 1, 2},
        b"bytes",
        b"\xff\x00",
        project,
        Thing(),
        float("nan"),
        (1, (2,)),
        ValueError("bad"),
        nested={"when": dt.date(2025, 1, 2), 7: dt.timedelta(seconds=90)},
        sync=True,
    )
    record = AsyncTaskRecord.objects.get(task_name=key)
    expected_args = [
        "2025-01-02T03:04:05+00:00",
        "1.10",
        str(ident),
        [1, 2, 3],
        "bytes",
        "b'\\xff\\x00'",
        {"model": "testapp.project", "pk": project.pk, "str": "Alpha"},
        "a thing",
        "nan",
        [1, [2]],
        "ValueError: bad",
    ]
    assert record.args_payload == expected_args
    assert record.kwargs_payload == {"nested": {"when": "2025-01-02", "7": 90.0}}
    assert record.result_payload["args"] == expected_args
    assert record.result_payload["kwargs"]["nested"] == {"when": "2025-01-02", "7": 90.0}


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.just(dt.timezone.utc))
    | st.dates()
    | st.decimals()
    | st.uuids()
    | st.timedeltas(),
    lambda children: (
        st.lists(children)
        | st.tuples(children, children)
        | st.frozensets(st.integers() | st.text())
        | st.dictionaries(st.text() | st.integers(), children)
    ),
    max_leaves=15,
)


@given(values)
@hsettings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_json_safe_always_dumps(value: Any) -> None:
    text = json.dumps(json_safe(value), allow_nan=False)
    assert json_safe(json.loads(text)) == json.loads(text)  # stable: safe data stays as it is


def test_self_referencing_payload_is_cut() -> None:
    loop: list[Any] = []
    loop.append(loop)
    json.dumps(json_safe(loop))


# -- the seed examples, as written (prefix changed) --------------------------------------------------
def test_seed_000_section_1_app_manager() -> None:
    class AppAsyncManager(ModelTrackingAsyncManager):
        record_model_path = "testapp.AsyncTaskRecord"

        def format_user(self, user):  # type: ignore[no-untyped-def]
            if not user:
                return "Anonymous"
            if hasattr(user, "get_username"):
                return user.get_username()
            return str(user)

        def format_affected(self, affected):  # type: ignore[no-untyped-def]
            if isinstance(affected, (list, tuple, set)):
                return ", ".join(map(str, affected))
            return str(affected) if affected else ""

    manager = AppAsyncManager()
    anonymous = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, affected_objects=["p1", "p2"]
    )
    carol = User.objects.create(username="carol")
    named = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, user=carol, affected_objects=None
    )
    first, second = (AsyncTaskRecord.objects.get(task_name=k) for k in (anonymous, named))
    assert (first.user_label, first.affected_objects) == ("Anonymous", "p1, p2")
    assert (second.user_label, second.affected_objects) == ("carol", "")


def test_seed_000_section_4_notifying_manager() -> None:
    manager = NotifyingAsyncManager()
    ok = manager.launch_async_task("tests.testapp.tasks.add", 2, 2, sync=True)
    with pytest.raises(ValueError):
        manager.launch_async_task("tests.testapp.tasks.fail", "kaput", sync=True)
    bad = AsyncTaskRecord.objects.exclude(task_name=ok).get().task_name
    assert ("success", ok, 4) in managers.NOTIFIED
    assert any(
        kind == "ops" and bad in text and "ValueError: kaput" in text
        for kind, text, _ in managers.NOTIFIED
    )
    assert AsyncTaskRecord.objects.get(task_name=ok).status == "success"
    assert AsyncTaskRecord.objects.get(task_name=bad).status == "failed"


def test_seed_000_section_4_side_effects_survive_a_database_outage(caplog: Any) -> None:
    from django.db import OperationalError

    with mock.patch.object(sql, "write_record", side_effect=OperationalError("db down")):
        key = NotifyingAsyncManager().launch_async_task("tests.testapp.tasks.add", 2, 3, sync=True)
    assert ("success", key, 5) in managers.NOTIFIED
    assert key in caplog.text and "db down" in caplog.text
    assert LiveTask.objects.get(task_name=key).status == "success"


def test_seed_000_section_5_cleanup_dashboard_data_override() -> None:
    class AppAsyncManager(ModelTrackingAsyncManager):
        record_model_path = "testapp.AsyncTaskRecord"

        def cleanup_dashboard_data(self, task_name):  # type: ignore[no-untyped-def]
            # return count of records deleted if you remove anything extra
            return 0

    manager = AppAsyncManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    with override_settings(POWERCRUD_SETTINGS={"CLEANUP_GRACE_PERIOD": 0}):
        summary = manager.cleanup_completed_tasks()
    assert summary["purged"] == [key] and summary["dashboard_artifacts_removed"] == 0
    assert AsyncTaskRecord.objects.get(task_name=key).cleaned_up is True


# -- seed 001: launch sites and the completion hook use the configured manager -------------------
def test_view_mixin_launches_into_the_configured_manager() -> None:
    from django.test import RequestFactory
    from django.views import View

    from powercrud_async.launch import AsyncMixin

    class ProjectBulkView(AsyncMixin, View):
        model = Project
        async_manager_class_path = "tests.testapp.managers.TrackedManager"

    projects = [Project.objects.create(name=name) for name in ("Alpha", "Beta")]
    view = ProjectBulkView()
    view.request = RequestFactory().post("/")
    view.request.user = User.objects.create(username="dora")
    result = view.launch_async("tests.testapp.tasks.echo", projects, sync=True)
    record = AsyncTaskRecord.objects.get(task_name=result.task_key)
    assert (record.status, record.user_label, record.affected_objects) == (
        "success",
        "dora",
        "Alpha, Beta",
    )
    assert record.args_payload == [[p.pk for p in projects]]
    assert [e.event for e in TrackedManager().get_timeline(result.task_key)][-2:] == [
        "complete",
        "cleanup",
    ]


def test_completion_hook_reports_failure_through_the_configured_manager() -> None:
    manager = CustomFieldsManager()
    key = manager.launch_async_task("tests.testapp.tasks.fail", "late")
    row = OrmQ.objects.get()
    LiveTask.objects.filter(task_name=key).update(status="in_progress")
    fake = mock.Mock(
        func=row.func(), args=row.args(), success=False, result="ValueError: late : trace"
    )
    fake.name = key
    task_completion_hook(fake)
    record = CustomRecord.objects.get(key=key)
    assert record.state == "failed" and record.note.startswith("Failed: ValueError: late")
    assert record.output.startswith("ValueError: late")


def test_failed_job_keeps_error_and_traceback_on_the_default_record() -> None:
    manager = TrackedManager()
    with pytest.raises(ValueError):
        manager.launch_async_task("tests.testapp.tasks.fail", "bad row", sync=True)
    record = AsyncTaskRecord.objects.get()
    assert record.status == "failed" and record.error == "ValueError: bad row"
    assert record.traceback.startswith("Traceback") and "bad row" in record.traceback
