"""The Logs and Events streams: who may read them, what they show, how they filter."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from powercrud_async.models import TaskEvent, TaskLogEntry
from tests.dashboard.conftest import client_for, user
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]


@pytest.fixture
def lines(make_record: Any) -> None:
    make_record(task_name="mine", user_label="alice")
    make_record(task_name="theirs", user_label="bob")
    for key, text in (("mine", "alice's line"), ("theirs", "bob's secret line")):
        TaskLogEntry.objects.create(
            task_name=key,
            level=logging.WARNING,
            level_name="WARNING",
            logger_name="app",
            message=text,
        )
        TaskLogEntry.objects.create(
            task_name=key,
            level=logging.DEBUG,
            level_name="DEBUG",
            logger_name="app.sql",
            message=f"debug of {key}",
        )
        TaskEvent.objects.create(
            task_name=key, event="fail", status="failed", message=f"{key} failed"
        )
        TaskEvent.objects.create(task_name=key, event="create", status="pending", message="Queued")


@pytest.mark.parametrize("url", ["/tasks/logs/", "/tasks/events/"])
def test_streams_need_the_dashboard_access(url: str, lines: None) -> None:
    assert Client().get(url).status_code == 302
    response = client_for(user("mallory")).get(url)
    assert response.status_code == 403 and b"secret" not in response.content


def test_own_tasks_only_users_read_only_their_jobs_lines(
    lines: None, dashboard_settings: Any
) -> None:
    dashboard_settings(VIEW_ACCESS="authenticated", OWN_TASKS_ONLY=True)
    account = user("alice")
    AsyncTaskRecord.objects.filter(task_name="mine").update(
        user_pk=str(account.pk)
    )  # ownership is by id
    alice = client_for(account)
    logs = alice.get("/tasks/logs/").content.decode()
    assert "alice&#x27;s line" in logs and "bob&#x27;s secret" not in logs
    events = alice.get("/tasks/events/").content.decode()
    assert "mine failed" in events and "theirs failed" not in events


def test_level_is_this_level_and_above_and_search_and_event_filter(
    lines: None, staff_client: Client
) -> None:
    rows = staff_client.get("/tasks/logs/?level=WARNING").context["rows"]
    assert sorted(r["entry"].message for r in rows) == ["alice's line", "bob's secret line"]
    rows = staff_client.get("/tasks/logs/?q=sql+theirs").context["rows"]
    assert [r["entry"].message for r in rows] == ["debug of theirs"]
    rows = staff_client.get("/tasks/events/?event=fail&q=mine").context["rows"]
    assert [r["entry"].message for r in rows] == ["mine failed"]
    assert staff_client.get("/tasks/events/?event=bogus").context["event"] == ""


def test_a_refresh_answers_the_region_and_pushes_the_url(lines: None, staff_client: Client) -> None:
    response = staff_client.get(
        "/tasks/logs/?level=WARNING", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-stream-results"
    )
    html = response.content.decode()
    assert (
        html.startswith('<section id="pca-stream-results"')
        and response["HX-Push-Url"] == "/tasks/logs/?level=WARNING"
    )
