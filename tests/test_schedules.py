"""Schedules that run through the manager: creation checks, pause/resume, run now, and end to end
with django-q2's scheduler inside a real qcluster."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from powercrud_async import schedules
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import (
    InvalidConflictIds,
    InvalidSchedule,
    InvalidTaskFunction,
    UnknownSchedule,
)
from powercrud_async.lifecycle import recurring, triggers
from powercrud_async.models import LiveTask, ScheduleState, TaskEvent, TaskLock
from tests.cluster import wait_until
from tests.dashboard.managers import DashboardManager
from tests.testapp.models import AsyncTaskRecord, Project

MANAGER = "tests.dashboard.managers.DashboardManager"


def make(**options: Any) -> Schedule:
    values: dict[str, Any] = {"name": "adder", "schedule_type": Schedule.MINUTES, "minutes": 15}
    values.update(options)
    func = values.pop("func", "tests.testapp.tasks.add")
    args = values.pop("args", (2, 3))
    return DashboardManager().schedule_async_task(func, *args, **values)


def snapshot() -> tuple[Any, ...]:
    return (
        list(Schedule.objects.values()),
        list(ScheduleState.objects.values()),
        LiveTask.objects.count(),
        TaskLock.objects.count(),
        OrmQ.objects.count(),
    )


# -- creating ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_schedule_async_task_stores_a_run_through_the_manager() -> None:
    project = Project.objects.create(name="p")
    schedule = make(
        conflict_ids={"testapp.Project": [project.pk]},
        affected_objects="Project p",
        repeats=4,
        greeting="hi",
    )
    assert isinstance(schedule, Schedule)
    assert schedule.func == "powercrud_async.schedules.run_scheduled"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 15, 4)
    assert schedule.intended_date_kwarg == "scheduled_for"  # each run learns its due time
    spec = recurring.spec_of(Schedule.objects.get(pk=schedule.pk))
    assert spec == {
        "func": "tests.testapp.tasks.add",
        "args": [2, 3],
        "kwargs": {"greeting": "hi"},
        "conflict_ids": {"testapp.project": [str(project.pk)]},
        "affected_objects": "Project p",
        "user": None,
        "manager_class": MANAGER,
        "manager_config": None,
        "schedule": schedule.pk,
    }
    assert triggers.describe_trigger(schedule) == "every 15 minutes"


@pytest.mark.django_db
def test_cron_schedule_gets_its_next_run_from_the_expression() -> None:
    schedule = make(schedule_type=Schedule.CRON, minutes=None, cron="0 3 * * *")
    local = timezone.localtime(schedule.next_run)
    assert (local.hour, local.minute) == (3, 0) and schedule.next_run > timezone.now()
    assert triggers.describe_trigger(schedule) == "cron 0 3 * * * — at 03:00 every day"


@pytest.mark.parametrize(
    "options,error,words",
    [
        (
            {"schedule_type": "C", "minutes": None, "cron": "61 * * * *"},
            InvalidSchedule,
            "not a valid cron",
        ),
        (
            {"schedule_type": "C", "minutes": None, "cron": "* * *"},
            InvalidSchedule,
            "not a valid cron",
        ),
        ({"minutes": -5}, InvalidSchedule, "between 1 and"),
        ({"minutes": 0}, InvalidSchedule, "between 1 and"),
        ({"minutes": None}, InvalidSchedule, "between 1 and"),
        ({"func": "tests.testapp.tasks.nope"}, InvalidTaskFunction, "cannot be imported"),
        ({"func": "nodots"}, InvalidTaskFunction, "dotted path"),
        ({"name": "taken"}, InvalidSchedule, "already exists"),
        ({"name": "  "}, InvalidSchedule, "needs a name"),
        ({"name": "x" * 101}, InvalidSchedule, "longer than"),
        ({"schedule_type": "Z"}, InvalidSchedule, "not one of"),
        ({"repeats": -2}, InvalidSchedule, "repeats"),
        ({"next_run": datetime(2030, 1, 1)}, InvalidSchedule, "aware"),
        ({"args": (object(),)}, InvalidSchedule, "literals"),
        ({"conflict_ids": {"testapp.Project": "1"}}, InvalidConflictIds, "iterable"),
        ({"manager_class": "tests.nowhere.Manager"}, InvalidSchedule, "cannot be imported"),
        ({"manager_class": "tests.testapp.tasks.add"}, InvalidSchedule, "not an AsyncManager"),
        ({"cron": "0 3 * * *"}, InvalidSchedule, "only applies"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(
    options: dict[str, Any], error: type, words: str
) -> None:
    make(name="taken")
    before = snapshot()
    with pytest.raises(error, match=words):
        make(**options)
    assert snapshot() == before


def test_describe_trigger_in_words() -> None:
    cases = {
        ("I", 1, None): "every minute",
        ("H", None, None): "every hour",
        ("D", None, None): "every day",
        ("W", None, None): "every week",
        ("O", None, None): "once",
        ("C", None, "*/5 * * * *"): "cron */5 * * * * — every 5 minutes",
        ("C", None, "0 22 * * 1-5"): "cron 0 22 * * 1-5 — at 22:00 Monday to Friday",
        ("C", None, "30 2 1 * *"): "cron 30 2 1 * * — at 02:30 on day 1 of every month",
        ("C", None, "0 9 * * 0"): "cron 0 9 * * 0 — at 09:00 every Sunday",
        ("C", None, "5 * * * *"): "cron 5 * * * * — at minute 5 of every hour",
        ("C", None, "0 0 1 1 *"): "cron 0 0 1 1 *",
    }
    for (kind, minutes, cron), words in cases.items():
        assert (
            triggers.describe_trigger(Schedule(schedule_type=kind, minutes=minutes, cron=cron))
            == words
        )


# -- pausing -------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # django-q2's scheduler closes the connection first
def test_pause_keeps_the_trigger_and_the_scheduler_skips_it() -> None:
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    due = timezone.now() - timedelta(minutes=1)
    schedule = make(repeats=7, next_run=due)
    assert recurring.pause_schedule(schedule.pk) is True
    assert recurring.pause_schedule(schedule.pk) is False  # already paused
    scheduler(broker=get_broker())  # django-q2's own pass over due schedules
    assert not OrmQ.objects.exists()
    paused = Schedule.objects.get(pk=schedule.pk)
    assert (paused.repeats, paused.schedule_type, paused.minutes) == (0, "I", 15)
    assert recurring.is_paused(paused)


@pytest.mark.django_db
def test_resume_restores_the_exact_trigger_and_a_sensible_next_run() -> None:
    now = timezone.now()
    ahead = make(name="ahead", repeats=5, next_run=now + timedelta(minutes=10))
    behind = make(name="behind", repeats=-1, next_run=now - timedelta(minutes=40))
    daily = make(
        name="daily", schedule_type="D", minutes=None, next_run=now - timedelta(days=3, hours=1)
    )
    cron = make(name="cron", schedule_type="C", minutes=None, cron="0 3 * * *")
    for schedule in (ahead, behind, daily, cron):
        recurring.pause_schedule(schedule.pk)
    later = now + timedelta(minutes=1)
    for schedule in (ahead, behind, daily, cron):
        assert recurring.resume_schedule(schedule.pk, now=later) is True
        assert recurring.resume_schedule(schedule.pk, now=later) is False
    ahead, behind, daily, cron = (
        Schedule.objects.get(pk=s.pk) for s in (ahead, behind, daily, cron)
    )
    assert (ahead.repeats, ahead.next_run) == (5, now + timedelta(minutes=10))
    # The next slot of the same 15-minute cadence after now: -40 min -> +5 min.
    assert (behind.repeats, behind.next_run) == (-1, now + timedelta(minutes=5))
    assert daily.next_run == now + timedelta(days=1, hours=-1) and daily.schedule_type == "D"
    assert timezone.localtime(cron.next_run).hour == 3 and cron.cron == "0 3 * * *"
    assert not ScheduleState.objects.filter(paused_at__isnull=False).exists()


@pytest.mark.django_db
def test_finished_or_unknown_schedules_cannot_be_paused() -> None:
    schedule = make(repeats=0)
    with pytest.raises(InvalidSchedule, match="no runs left"):
        recurring.pause_schedule(schedule.pk)
    with pytest.raises(UnknownSchedule):
        recurring.pause_schedule(999999)
    with pytest.raises(UnknownSchedule):
        schedules.run_schedule_now("nope")


@pytest.mark.django_db
def test_editing_a_paused_schedule_changes_what_resume_restores() -> None:
    schedule = make(repeats=3)
    recurring.pause_schedule(schedule.pk)
    recurring.update_schedule(
        schedule.pk, name="renamed", trigger=triggers.Trigger(schedule_type="H", repeats=9)
    )
    edited = Schedule.objects.get(pk=schedule.pk)
    assert (edited.name, edited.schedule_type, edited.minutes, edited.repeats) == (
        "renamed",
        "H",
        None,
        0,
    )
    recurring.resume_schedule(schedule.pk)
    assert Schedule.objects.get(pk=schedule.pk).repeats == 9


@pytest.mark.django_db
def test_bad_edit_changes_nothing() -> None:
    schedule = make()
    make(name="other")
    before = snapshot()
    for options, words in (
        ({"name": "other"}, "already exists"),
        ({"cron": "nope", "schedule_type": "C", "minutes": None}, "cron"),
        ({"schedule_type": "I", "minutes": -1}, "between"),
    ):
        values = {"name": "adder", "schedule_type": "I", "minutes": 15, **options}
        name = values.pop("name")
        with pytest.raises(InvalidSchedule, match=words):
            recurring.update_schedule(schedule.pk, name=name, trigger=triggers.Trigger(**values))
    assert snapshot() == before


# -- running now -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_run_now_launches_once_through_the_manager_and_keeps_the_next_run(
    django_capture_on_commit_callbacks: Any,
) -> None:
    schedule = make(repeats=4, next_run=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = schedules.run_schedule_now(schedule.pk)
    assert outcome.outcome == "launched"
    info = LiveTask.objects.get(task_name=outcome.task)
    assert (info.func_path, info.manager_class) == ("tests.testapp.tasks.add", MANAGER)
    assert AsyncTaskRecord.objects.filter(task_name=outcome.task).exists()
    after = Schedule.objects.get(pk=schedule.pk)
    assert (after.next_run, after.repeats) == (schedule.next_run, 4)
    state = ScheduleState.objects.get(schedule=schedule)
    assert (state.last_task, state.last_outcome) == (outcome.task, "launched")


@pytest.mark.django_db
def test_run_now_of_a_locked_schedule_is_recorded_with_the_holder(
    django_capture_on_commit_callbacks: Any,
) -> None:
    project = Project.objects.create(name="p")
    schedule = make(conflict_ids={"testapp.Project": [project.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        AsyncManager().launch_async_task(
            "tests.testapp.tasks.add",
            1,
            1,
            task_key="nightly-import",
            conflict_ids={"testapp.Project": [project.pk]},
        )
    outcome = schedules.run_schedule_now(schedule.pk)
    assert outcome.outcome == "blocked" and outcome.holders == ("nightly-import",)
    assert list(LiveTask.objects.values_list("task_name", flat=True)) == ["nightly-import"]
    record = AsyncTaskRecord.objects.get(task_name=outcome.task)
    assert record.status == "cancelled" and "nightly-import" in record.message
    assert list(
        TaskEvent.objects.filter(task_name=outcome.task).values_list("event", flat=True)
    ) == ["create", "cancel"]
    assert list(TaskLock.objects.values_list("task_name", flat=True)) == ["nightly-import"]


@pytest.mark.django_db
def test_plain_django_q2_schedule_runs_now_through_the_manager(
    django_capture_on_commit_callbacks: Any,
) -> None:
    plain = Schedule.objects.create(
        name="plain",
        func="tests.testapp.tasks.echo",
        args="1, 'a'",
        kwargs="flag=True",
        schedule_type=Schedule.DAILY,
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = schedules.run_schedule_now(plain.pk)
    info = LiveTask.objects.get(task_name=outcome.task)
    assert info.func_path == "tests.testapp.tasks.echo"
    from powercrud_async.callables import loads_call

    assert loads_call(info.call) == ((1, "a"), {"flag": True})
    assert triggers.describe_trigger(plain) == "every day"


@pytest.mark.django_db
def test_a_redelivered_scheduled_run_launches_nothing_twice(
    django_capture_on_commit_callbacks: Any,
) -> None:
    schedule = make()
    spec = recurring.spec_of(schedule)
    due = "2026-12-04T03:00:00.250000+01:00"
    with django_capture_on_commit_callbacks(execute=True):
        first = schedules.run_scheduled(spec, scheduled_for=due)
        again = schedules.run_scheduled(spec, scheduled_for=due)
    assert first["task"] == again["task"] == f"schedule-{schedule.pk}-20261204T020000Z"
    assert (first["outcome"], again["message"]) == ("launched", "Already launched")
    assert LiveTask.objects.count() == 1 and OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_a_run_queued_before_its_schedule_was_removed_launches_nothing() -> None:
    schedule = make()
    spec = recurring.spec_of(schedule)
    recurring.remove_schedule(schedule.pk)
    assert (
        schedules.run_scheduled(spec, scheduled_for=timezone.now().isoformat())["outcome"]
        == "removed"
    )
    assert not LiveTask.objects.exists() and not OrmQ.objects.exists()


def test_the_docs_quote_the_real_error_messages(db: Any) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "schedules.md").read_text()
    make(name="Nightly")
    for options in (
        {"schedule_type": "C", "minutes": None, "cron": "61 * * * *"},
        {"minutes": -5},
        {"name": "Nightly"},
    ):
        with pytest.raises(InvalidSchedule) as caught:
            make(**options)
        assert f"`{caught.value}`" in text


# -- end to end: django-q2's scheduler inside a real qcluster --------------------------------------
def last_state(schedule: Schedule) -> ScheduleState | None:
    return ScheduleState.objects.filter(schedule_id=schedule.pk).exclude(last_outcome="").first()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_due_schedule_runs_once_through_the_manager_and_frees_its_locks(qcluster: Any) -> None:
    project = Project.objects.create(name="p")
    schedule = make(
        conflict_ids={"testapp.Project": [project.pk]},
        minutes=60,
        next_run=timezone.now() - timedelta(seconds=5),
    )
    qcluster(PCA_Q_GUARD_CYCLE="30")  # the scheduler runs as the cluster starts
    state = wait_until(lambda: last_state(schedule), timeout=60)
    assert state.last_outcome == "launched" and state.last_task.startswith(
        f"schedule-{schedule.pk}-"
    )
    wait_until(
        lambda: LiveTask.objects.filter(task_name=state.last_task, status="success").exists(),
        timeout=60,
    )
    assert LiveTask.objects.count() == 1
    # The worker writes the record with other jobs' ends, within RECORD_WRITE_DELAY.
    record = wait_until(
        lambda: AsyncTaskRecord.objects.filter(task_name=state.last_task, status="success").first()
    )
    assert record.result_payload == 5
    assert not TaskLock.objects.exists()
    after = Schedule.objects.get(pk=schedule.pk)
    assert after.repeats == -1 and after.next_run > timezone.now() + timedelta(minutes=50)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_due_schedule_blocked_by_a_lock_never_runs_and_stays_scheduled(qcluster: Any) -> None:
    project = Project.objects.create(name="p")
    assert AsyncManager().add_conflict_ids("nightly-import", {"testapp.Project": [project.pk]})
    schedule = make(
        conflict_ids={"testapp.Project": [project.pk]},
        minutes=60,
        next_run=timezone.now() - timedelta(seconds=5),
    )
    qcluster(PCA_Q_GUARD_CYCLE="30")
    state = wait_until(lambda: last_state(schedule), timeout=60)
    assert state.last_outcome == "blocked" and "nightly-import" in state.last_message
    assert not LiveTask.objects.exists()  # never registered, never ran
    record = AsyncTaskRecord.objects.get(task_name=state.last_task)
    assert record.status == "cancelled" and "locked by task nightly-import" in record.message
    cancel = TaskEvent.objects.get(task_name=state.last_task, event="cancel")
    assert "nightly-import" in cancel.message
    assert list(TaskLock.objects.values_list("task_name", flat=True)) == ["nightly-import"]
    after = Schedule.objects.get(pk=schedule.pk)
    assert after.repeats == -1 and after.next_run > timezone.now() + timedelta(minutes=50)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_scheduler_in_the_cluster_skips_a_paused_schedule(qcluster: Any) -> None:
    due = timezone.now() - timedelta(seconds=5)
    paused = make(name="paused", minutes=60, next_run=due, repeats=3)
    control = make(name="control", minutes=60, next_run=due)
    recurring.pause_schedule(paused.pk)
    qcluster(PCA_Q_GUARD_CYCLE="30")
    # Both were due in the same pass of the scheduler: once the control ran, the paused one was seen.
    wait_until(lambda: last_state(control), timeout=60)
    after = Schedule.objects.get(pk=paused.pk)
    assert Schedule.objects.get(pk=control.pk).task  # the scheduler enqueued the control...
    assert after.task is None  # ...and, in the same pass, nothing for the paused one
    assert (after.repeats, after.next_run) == (0, due)
    assert ScheduleState.objects.get(schedule=paused).last_outcome == ""
    recurring.resume_schedule(paused.pk)
    assert Schedule.objects.get(pk=paused.pk).repeats == 3
