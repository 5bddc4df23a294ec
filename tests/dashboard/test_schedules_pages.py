"""The Schedules pages through Django's test client: list, filters, actions, create and edit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from powercrud_async.lifecycle import recurring
from powercrud_async.models import AuditEntry, LiveTask, ScheduleState
from tests.dashboard.conftest import client_for, user
from tests.dashboard.managers import DashboardManager
from tests.testapp.models import Project

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

LIST = "/tasks/schedules/"
ACTION = "/tasks/schedules/actions/"
NEW = "/tasks/schedules/new/"


def ours(name: str = "nightly", **options: Any) -> Schedule:
    values: dict[str, Any] = {"schedule_type": "I", "minutes": 15}
    values.update(options)
    return DashboardManager().schedule_async_task(
        "tests.testapp.tasks.add", 1, 2, name=name, **values
    )


def plain(name: str = "plain", **options: Any) -> Schedule:
    return Schedule.objects.create(
        name=name,
        func="tests.testapp.tasks.echo",
        args="1",
        schedule_type=options.pop("schedule_type", "D"),
        **options,
    )


def editor(**flags: Any) -> Client:
    account = user("editor", is_staff=True, **flags)
    account.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="django_q", codename__in=["add_schedule", "change_schedule"]
        )
    )
    return client_for(account)


def test_list_shows_ours_and_plain_schedules_with_trigger_next_run_and_state(
    staff_client: Client, settings: Any
) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    at = timezone.now() + timedelta(hours=2)
    ours("nightly", next_run=at, repeats=3)
    ours("cronjob", schedule_type="C", minutes=None, cron="0 3 * * *")
    paused = plain("legacy")
    recurring.pause_schedule(paused.pk)
    html = staff_client.get(LIST).content.decode()
    assert "every 15 minutes" in html and "cron 0 3 * * * — at 03:00 every day" in html
    assert "legacy" in html and "django-q2" in html and "tests.testapp.tasks.echo" in html
    assert timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S") in html  # the project's time zone
    assert "in 2 h" in html or "in 1 h" in html or "in 120 min" in html
    assert "3 left" in html and "Paused" in html and "never ran" in html
    assert 'href="/tasks/schedules/"' in html and "Schedules" in html  # in the nav


def test_filters_search_and_sort_are_in_the_url_and_survive_refresh(staff_client: Client) -> None:
    ours("alpha")
    ours("beta", schedule_type="H", minutes=None)
    pausing = ours("gamma")
    recurring.pause_schedule(pausing.pk)
    page = staff_client.get(LIST, {"state": "active", "trigger": "H"}).content.decode()
    assert "beta" in page and "alpha" not in page and "gamma" not in page
    assert staff_client.get(LIST, {"state": "paused"}).content.decode().count("data-schedule=") == 1
    assert "alpha" in staff_client.get(LIST, {"q": "alp"}).content.decode()
    names = [r.name for r in staff_client.get(LIST, {"sort": "-name"}).context["rows"]]
    assert names == ["gamma", "beta", "alpha"]
    states = [r.state for r in staff_client.get(LIST, {"sort": "state"}).context["rows"]]
    assert states == ["active", "active", "paused"]
    # The live region polls its own URL, filters included; an htmx refresh answers with the region only.
    region = staff_client.get(
        LIST,
        {"state": "active", "q": "b"},
        headers={
            "HX-Request": "true",
            "HX-Target": "pca-schedules-results",
            "HX-Trigger": "pca-schedules-results",
        },
    )
    body = region.content.decode()
    assert body.startswith('<section id="pca-schedules-results"') and "q=b&amp;state=active" in body
    assert "HX-Push-Url" not in region


def test_run_now_pause_resume_remove_from_the_page_are_audited(
    staff_client: Client, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    schedule = ours(next_run=timezone.now() + timedelta(hours=1), repeats=5)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            ACTION, {"action": "run", "tasks": [schedule.pk]}, headers={"HX-Request": "true"}
        )
    assert "Ran 1 schedule." in response.content.decode()
    key = ScheduleState.objects.get(schedule=schedule).last_task
    assert LiveTask.objects.get(task_name=key).user_id == str(staff.pk)
    assert Schedule.objects.get(pk=schedule.pk).next_run == schedule.next_run
    assert (
        f"/tasks/jobs/{key}/" in staff_client.get(LIST).content.decode()
    )  # last run links to its job
    staff_client.post(ACTION, {"action": "pause", "tasks": [schedule.pk]})
    assert Schedule.objects.get(pk=schedule.pk).repeats == 0
    staff_client.post(ACTION, {"action": "resume", "tasks": [schedule.pk]})
    assert Schedule.objects.get(pk=schedule.pk).repeats == 5
    confirm = staff_client.post(
        ACTION, {"action": "remove", "tasks": [schedule.pk]}, headers={"HX-Request": "true"}
    )
    assert (
        "Remove 1 schedule?" in confirm.content.decode()
        and Schedule.objects.filter(pk=schedule.pk).exists()
    )
    page = staff_client.post(
        ACTION, {"action": "remove", "tasks": [schedule.pk]}
    )  # without JavaScript
    assert "<html" in page.content.decode() and "Remove 1 schedule?" in page.content.decode()
    staff_client.post(ACTION, {"action": "remove", "tasks": [schedule.pk], "confirmed": "1"})
    assert not Schedule.objects.filter(pk=schedule.pk).exists()
    entries = list(
        AuditEntry.objects.order_by("id").values_list("action", "username", "succeeded", "outcome")
    )
    assert [e[:3] for e in entries] == [
        ("schedule-run", "ops", 1),
        ("schedule-pause", "ops", 1),
        ("schedule-resume", "ops", 1),
        ("schedule-remove", "ops", 1),
    ]
    assert entries[-1][3] == "Removed 1 schedule."
    audit_page = staff_client.get("/tasks/audit/").content.decode()
    assert "/tasks/schedules/?q=nightly" in audit_page  # targets link to the schedule, not to a job


def test_bulk_actions_report_counts_and_cover_plain_schedules(staff_client: Client) -> None:
    first, second, legacy = ours("a"), ours("b"), plain("legacy")
    recurring.pause_schedule(second.pk)
    response = staff_client.post(
        ACTION,
        {"action": "pause", "tasks": [first.pk, second.pk, legacy.pk, 999]},
        headers={"HX-Request": "true"},
    )
    text = response.content.decode()
    assert (
        "Paused 2 schedules, 2 not" in text
        and "was already paused" in text
        and "no such schedule" in text
    )
    assert Schedule.objects.get(pk=legacy.pk).repeats == 0
    staff_client.post(ACTION, {"action": "resume", "tasks": [legacy.pk]})
    assert Schedule.objects.get(pk=legacy.pk).repeats == -1
    assert AuditEntry.objects.get(action="schedule-pause").refused == 2


def test_a_run_blocked_by_a_lock_is_reported_with_its_holder(
    staff_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    project = Project.objects.create(name="p")
    schedule = ours(conflict_ids={"testapp.Project": [project.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        DashboardManager().launch_async_task(
            "tests.testapp.tasks.add",
            1,
            1,
            task_key="holder-job",
            conflict_ids={"testapp.Project": [project.pk]},
        )
    text = staff_client.post(
        ACTION, {"action": "run", "tasks": [schedule.pk]}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "skipped: objects locked by holder-job" in text
    page = staff_client.get(LIST).content.decode()
    assert "Skipped" in page and "holder-job" in page


def test_actions_need_csrf(staff: Any) -> None:
    schedule = ours()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    assert strict.post(ACTION, {"action": "pause", "tasks": [schedule.pk]}).status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).repeats == -1


def test_viewers_who_may_not_act_are_refused_and_audited(dashboard_settings: Any) -> None:
    dashboard_settings(ACTION_ACCESS="superuser")
    schedule = ours()
    viewer = client_for(user("viewer", is_staff=True))
    assert (
        viewer.post(
            ACTION, {"action": "remove", "tasks": [schedule.pk], "confirmed": "1"}
        ).status_code
        == 403
    )
    assert Schedule.objects.filter(pk=schedule.pk).exists()
    assert AuditEntry.objects.get().refused == 1
    assert 'value="run"' not in viewer.get(LIST).content.decode()
    assert viewer.get(NEW).status_code == 403


def test_create_from_the_page(django_capture_on_commit_callbacks: Any) -> None:
    client = editor()
    project = Project.objects.create(name="p")
    response = client.post(
        NEW,
        {
            "name": "rebuild",
            "func": "tests.testapp.tasks.add",
            "schedule_type": "C",
            "cron": "0 3 * * *",
            "repeats": "-1",
            "args": "[1, 2]",
            "kwargs": "",
            "conflict_ids": f'{{"testapp.Project": [{project.pk}]}}',
        },
    )
    assert response.status_code == 303
    schedule = Schedule.objects.get(name="rebuild")
    spec = recurring.spec_of(schedule)
    assert spec["args"] == [1, 2] and spec["conflict_ids"] == {"testapp.project": [str(project.pk)]}
    assert AuditEntry.objects.get().action == "schedule-create"


@pytest.mark.parametrize(
    "changes,field,words",
    [
        ({"schedule_type": "C", "cron": "0 25 * * *"}, "cron", "not a valid cron expression"),
        ({"minutes": "-5"}, "minutes", "between 1 and"),
        ({"func": "tests.testapp.tasks.missing"}, "func", "cannot be imported"),
        ({"name": "taken"}, "name", "already exists"),
        ({"args": "{"}, "args", "Not valid JSON"),
        ({"conflict_ids": '{"nope.Model": [1]}'}, "conflict_ids", ""),
    ],
)
def test_bad_input_in_the_form_gets_a_clear_message_and_changes_nothing(
    changes: dict[str, str], field: str, words: str
) -> None:
    client = editor()
    ours("taken")
    before = list(Schedule.objects.values())
    data = {
        "name": "fresh",
        "func": "tests.testapp.tasks.add",
        "schedule_type": "I",
        "minutes": "15",
        "cron": "",
        "repeats": "-1",
        "args": "",
        "kwargs": "",
        "conflict_ids": "",
    }
    data.update(changes)
    response = client.post(NEW, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field])
    assert "Nothing was saved" in response.content.decode()
    assert list(Schedule.objects.values()) == before


def test_edit_keeps_a_paused_schedule_paused() -> None:
    client = editor()
    schedule = ours(repeats=3)
    recurring.pause_schedule(schedule.pk)
    url = f"/tasks/schedules/{schedule.pk}/edit/"
    form = client.get(url).context["form"]
    assert form.initial["repeats"] == 3 and form.initial["func"] == "tests.testapp.tasks.add"
    response = client.post(
        url,
        {
            "name": "nightly",
            "func": "tests.testapp.tasks.add",
            "schedule_type": "H",
            "repeats": "4",
            "args": "[5, 6]",
            "kwargs": "{}",
            "conflict_ids": "",
        },
    )
    assert response.status_code == 303
    edited = Schedule.objects.get(pk=schedule.pk)
    assert (edited.schedule_type, edited.repeats) == ("H", 0)
    assert recurring.spec_of(edited)["args"] == [5, 6]
    recurring.resume_schedule(schedule.pk)
    assert Schedule.objects.get(pk=schedule.pk).repeats == 4


def test_overview_shows_scheduler_state_next_runs_and_failing_schedules(
    staff_client: Client,
) -> None:
    soon = ours("soon", next_run=timezone.now() + timedelta(minutes=5))
    ours("later", next_run=timezone.now() + timedelta(hours=5))
    ScheduleState.objects.create(
        schedule=soon,
        last_task="k-1",
        last_outcome="blocked",
        last_message="Scheduled run of 'soon' skipped: objects locked by task other.",
        last_run_at=timezone.now(),
    )
    html = staff_client.get("/tasks/").content.decode()
    assert "No cluster is running: no schedule will run" in html
    assert html.index("soon") < html.index("later")
    assert "locked by task other" in html


def test_the_list_costs_the_same_queries_for_3_or_30_schedules(staff_client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(LIST).status_code == 200
        return len(captured)

    for index in range(3):
        ours(f"s{index}")
    few = count()
    for index in range(3, 30):
        ours(f"s{index}")
    assert count() == few
