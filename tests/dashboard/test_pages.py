"""Overview, detail, progress, locks, audit trail and export."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from powercrud_async.models import AuditEntry, LiveTask, TaskEvent, TaskLock, TaskLogEntry
from powercrud_async.statuses import TaskStatus
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

TRACEBACK = 'Traceback (most recent call last):\n  File "jobs.py", line 3, in run\n    raise ValueError("boom")\nValueError: boom\n'


# -- overview ---------------------------------------------------------------------------------------
def test_overview_leads_with_what_needs_attention(staff_client: Any, make_record: Any) -> None:
    now = timezone.now()
    make_record(
        task_name="f1",
        status="failed",
        message="Failed: KeyError: 'x'",
        result_payload="KeyError: 'x'",
        failed_at=now - timedelta(minutes=2),
    )
    make_record(task_name="f-old", status="failed", failed_at=now - timedelta(days=2))
    AsyncTaskRecord.objects.filter(task_name="f-old").update(updated_at=now - timedelta(days=2))
    make_record(
        task_name="r1", status="in_progress", percent=10.0, started_at=now - timedelta(minutes=9)
    )
    make_record(
        task_name="r2", status="in_progress", percent=50.0, started_at=now - timedelta(minutes=1)
    )
    make_record(task_name="q1", status="pending")
    make_record(task_name="s1", status="success", completed_at=now - timedelta(minutes=5))
    make_record(task_name="c1", status="cancelled")
    LiveTask.objects.create(
        task_name="r1",
        status="in_progress",
        created_at=now - timedelta(minutes=9),
        started_at=now - timedelta(minutes=9),
        heartbeat_at=now - timedelta(minutes=3),
    )
    LiveTask.objects.create(
        task_name="r2", status="in_progress", created_at=now, started_at=now, heartbeat_at=now
    )
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="1",
        task_name="r1",
        expires_at=now + timedelta(hours=1),
    )
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="2",
        task_name="r1",
        expires_at=now + timedelta(hours=1),
    )

    response = staff_client.get("/tasks/")
    assert response.status_code == 200
    o = response.context["overview"]
    assert o.counts["failed"] == 1  # the two-day-old failure is outside the window
    assert (
        o.counts["running"],
        o.counts["queued"],
        o.counts["succeeded"],
        o.counts["cancelled"],
    ) == (2, 1, 1, 1)
    assert [s.stuck.task_name for s in o.stuck] == ["r1"] and o.stuck[0].stuck.kind == "dead"
    assert (o.locks, o.lock_owners) == (2, 1)
    assert o.oldest_running.key == "r1" and o.oldest_age.startswith("9 min")
    assert [j.key for j in o.recent_failures] == ["f1"]
    assert o.queue_depth == 0
    html = response.content.decode()
    assert html.index("Needs attention") < html.index("Activity") < html.index("Throughput")
    for text in (
        "last 24 h",
        "now · no heartbeat or over time",
        "now · waiting in the broker",
        "No django-q2 cluster is reporting.",
    ):
        assert text in html
    # failed and stuck jobs are one click away
    assert 'href="/tasks/jobs/?status=failed&amp;window=24h"' in html
    assert 'href="/tasks/jobs/?status=attention"' in html
    assert 'href="/tasks/jobs/r1/"' in html
    assert (
        "<svg" in html
        and 'role="img"' in html
        and "1 succeeded and 1 failed in the last 24 h" in html
    )


def test_overview_counts_follow_the_list_filters(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="f1", status="failed")
    make_record(task_name="f2", status="failed")
    listed = staff_client.get("/tasks/jobs/?status=failed&window=24h")
    assert (
        staff_client.get("/tasks/").context["overview"].counts["failed"]
        == listed.context["paginator"].count
        == 2
    )


def test_overview_fragment_for_its_own_refresh(staff_client: Any) -> None:
    html = staff_client.get(
        "/tasks/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-overview"
    ).content.decode()
    assert html.lstrip().startswith('<div id="pca-overview"') and "<html" not in html


def test_overview_with_a_reporting_cluster(staff_client: Any, monkeypatch: Any) -> None:
    from powercrud_async import broker

    now = timezone.now()
    monkeypatch.setattr(
        broker,
        "cluster_stats",
        lambda: [
            {
                "cluster_id": "abc123",
                "host": "worker-1",
                "status": "Idle",
                "workers": 4,
                "uptime": 3600.0,
                "task_q_size": 0,
                "done_q_size": 0,
                "reincarnations": 0,
                "timestamp": now - timedelta(seconds=3),
            }
        ],
    )
    html = staff_client.get("/tasks/").content.decode()
    assert "worker-1" in html and "1 cluster reporting" in html and "1 h" in html
    assert "No django-q2 cluster is reporting." not in html


def test_chart_buckets_by_hour() -> None:
    from powercrud_async.dashboard.chart import build_chart

    now = timezone.now().replace(minute=30)
    hour = now.replace(minute=0, second=0, microsecond=0)
    chart = build_chart(
        {
            (hour, TaskStatus.SUCCESS): 3,
            (hour, TaskStatus.FAILED): 1,
            (hour - timedelta(hours=2), TaskStatus.SUCCESS): 2,
        },
        now,
    )
    assert len(chart.bars) == 24
    assert (chart.bars[-1].succeeded, chart.bars[-1].failed) == (3, 1)
    assert chart.bars[-3].succeeded == 2
    assert (chart.total_ok, chart.total_failed, chart.peak) == (5, 1, 4)
    assert chart.bars[-1].fail_y < chart.bars[-1].ok_y  # failures stack on top


# -- detail -----------------------------------------------------------------------------------------
@pytest.fixture
def failed_job(make_record: Any) -> AsyncTaskRecord:
    now = timezone.now()
    record = make_record(
        task_name="job-f",
        status="failed",
        message="Failed: ValueError: boom <b>",
        percent=30.0,
        result_payload={"error": "ValueError: boom <b>", "traceback": TRACEBACK},
        args_payload=[1, 2],
        kwargs_payload={"dry_run": True},
        affected_objects="Project 1, Project 2",
        started_at=now - timedelta(seconds=50),
        failed_at=now - timedelta(seconds=20),
        duration=30.0,
    )
    for i, (event, status, message) in enumerate(
        [
            ("create", "pending", "Queued"),
            ("start", "in_progress", "Started"),
            ("fail", "failed", "Failed: ValueError: boom <b>"),
        ]
    ):
        TaskEvent.objects.create(
            task_name="job-f",
            event=event,
            status=status,
            message=message,
            created_at=now - timedelta(seconds=60 - i * 10),
        )
    for level, name, message in [
        (10, "DEBUG", "debug detail"),
        (20, "INFO", "loading rows"),
        (30, "WARNING", "2 rows skipped"),
        (40, "ERROR", "it broke\n" + "x" * 400),
    ]:
        TaskLogEntry.objects.create(
            task_name="job-f", level=level, level_name=name, logger_name="jobs", message=message
        )
    return record


def test_detail_shows_the_job_at_a_glance(
    staff_client: Any, failed_job: Any, make_record: Any
) -> None:
    make_record(task_name="job-f-retry", status="pending", retry_of="job-f")
    response = staff_client.get("/tasks/jobs/job-f/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "pca-badge--failed" in html and ">Failed<" in html
    assert '<strong class="pca-error-type">ValueError</strong>: boom &lt;b&gt;' in html
    assert html.count("Traceback (most recent call last)") == 1  # the traceback once
    assert "30 s" in html  # duration
    assert "Project 1, Project 2" in html
    assert "&quot;dry_run&quot;: true" in html  # kwargs pretty-printed
    assert "[\n  1,\n  2\n]" in html  # args pretty-printed
    assert [e["event"] for e in response.context["events"]] == ["create", "start", "fail"]
    assert 'href="/tasks/jobs/job-f-retry/"' in html and "Retried as" in html
    assert "Holds no locks" in html
    # progress: static for a finished job (no polling), with its final state
    assert 'id="pca-progress" hx-get' not in html
    assert response.context["task"]["status"] == "failed" and response.context["task"]["terminal"]
    # actions for a failed job
    assert 'value="retry"' in html and 'value="delete"' in html
    assert 'value="release"' not in html  # it holds no locks
    assert 'value="cancel"' not in html
    # every other record field
    labels = [label for label, _, _ in response.context["fields_rows"]]
    assert "Task name" in labels and "User label" in labels and "Result payload" not in labels


def test_retry_links_both_ways(staff_client: Any, failed_job: Any, make_record: Any) -> None:
    make_record(task_name="job-f2", status="success", retry_of="job-f")
    html = staff_client.get("/tasks/jobs/job-f2/").content.decode()
    assert "Retry of" in html and 'href="/tasks/jobs/job-f/"' in html


def test_logs_with_a_this_level_and_above_filter(staff_client: Any, failed_job: Any) -> None:
    response = staff_client.get("/tasks/jobs/job-f/")
    assert [log["level"] for log in response.context["logs"]] == [
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
    ]
    warning = staff_client.get("/tasks/jobs/job-f/?level=WARNING")
    assert [log["level"] for log in warning.context["logs"]] == ["WARNING", "ERROR"]
    assert staff_client.get("/tasks/jobs/job-f/?level=30").context["min_level"] == 30
    html = warning.content.decode()
    assert 'value="WARNING" selected' in html and "Warning and above (2)" in html
    assert '<details class="pca-log-more">' in html  # the long message expands
    fragment = staff_client.get(
        "/tasks/jobs/job-f/?level=ERROR", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-logs"
    )
    assert fragment.content.decode().lstrip().startswith('<section id="pca-logs"')
    assert fragment["HX-Push-Url"] == "/tasks/jobs/job-f/?level=ERROR"


def test_detail_of_a_running_job_polls_the_progress_endpoint(
    staff_client: Any, make_record: Any
) -> None:
    now = timezone.now()
    make_record(
        task_name="job-r", status="in_progress", percent=40.0, message="step 4/10", started_at=now
    )
    LiveTask.objects.create(
        task_name="job-r",
        status="in_progress",
        created_at=now,
        started_at=now,
        heartbeat_at=now,
        conflict_ids={"testapp.project": ["7"]},
    )
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="7",
        task_name="job-r",
        expires_at=now + timedelta(hours=1),
    )
    html = staff_client.get("/tasks/jobs/job-r/").content.decode()
    assert (
        'hx-get="/tasks/progress/?task_name=job-r" hx-trigger="every 1s [!document.hidden]"' in html
    )
    assert '<progress class="pca-progress-bar" max="100" aria-label="Progress" value="40">' in html
    assert "testapp.project</span> <strong>7</strong>" in html  # locks held now
    assert 'value="cancel"' in html and 'value="retry"' not in html
    assert "pca-job-finished from:body" in html


def test_detail_modal_and_body_fragments(staff_client: Any, failed_job: Any) -> None:
    body = staff_client.get(
        "/tasks/jobs/job-f/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-detail-body"
    )
    assert body.content.decode().lstrip().startswith('<div id="pca-detail-body"')
    modal = staff_client.get(
        "/tasks/jobs/job-f/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-modal-body"
    )
    assert "Open full page" in modal.content.decode() and "<html" not in modal.content.decode()


def test_detail_of_a_job_known_only_to_the_registry(staff_client: Any) -> None:
    LiveTask.objects.create(
        task_name="orphan",
        status="failed",
        func_path="jobs.rebuild",
        reason="Worker died: no heartbeat.",
        created_at=timezone.now(),
    )
    html = staff_client.get("/tasks/jobs/orphan/").content.decode()
    assert "rebuild" in html and "Worker died: no heartbeat." in html


def test_unknown_job_is_404(staff_client: Any) -> None:
    assert staff_client.get("/tasks/jobs/nope/").status_code == 404


def test_task_keys_with_slashes(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="reports/2024/q3")
    response = staff_client.get("/tasks/jobs/")
    assert 'href="/tasks/jobs/reports/2024/q3/"' in response.content.decode()
    assert staff_client.get("/tasks/jobs/reports/2024/q3/").status_code == 200


def test_traceback_from_django_q_when_the_record_has_none(
    staff_client: Any, make_record: Any
) -> None:
    from django_q.models import Task

    make_record(
        task_name="job-q",
        status="failed",
        message="Failed: ValueError: boom",
        result_payload="ValueError: boom",
    )
    Task.objects.create(
        id="a" * 32,
        name="job-q",
        func="powercrud_async.runner.run_task",
        success=False,
        started=timezone.now(),
        stopped=timezone.now(),
        result=f"boom : {TRACEBACK}",
    )
    html = staff_client.get("/tasks/jobs/job-q/").content.decode()
    assert html.count("Traceback (most recent call last)") == 1
    assert "boom : Traceback" not in html


def test_detail_escapes_everything(staff_client: Any, make_record: Any) -> None:
    make_record(
        task_name="xss",
        status="success",
        message="<script>alert(1)</script>",
        result_payload={"html": "<script>alert(2)</script>"},
        affected_objects="<img src=x onerror=alert(3)>",
    )
    TaskEvent.objects.create(task_name="xss", event="progress", message="<script>alert(4)</script>")
    TaskLogEntry.objects.create(
        task_name="xss", level=20, level_name="INFO", message="<script>alert(5)</script>"
    )
    html = staff_client.get("/tasks/jobs/xss/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    for n in range(1, 6):
        assert f"alert({n})" in html


# -- progress ------------------------------------------------------------------------------------------
def test_progress_endpoint_stops_polling_and_tells_the_page(staff_client: Any, launch: Any) -> None:
    key = launch("tests.testapp.tasks.add", 1, 2)
    running = staff_client.get(f"/tasks/progress/?task_name={key}")
    assert running.status_code == 200 and running.json()["status"] == "pending"
    live = staff_client.get(f"/tasks/progress/?task_name={key}", HTTP_HX_REQUEST="true")
    assert (
        live.status_code == 200
        and "HX-Trigger" not in live
        and "pca-progress" in live.content.decode()
    )
    from powercrud_async.async_manager import AsyncManager

    AsyncManager.resolve_manager().cancel_task(key)
    done = staff_client.get(f"/tasks/progress/?task_name={key}", HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    assert json.loads(done["HX-Trigger"]) == {"pca-job-finished": {}}
    assert "Cancelled" in done.content.decode()


# -- locks ---------------------------------------------------------------------------------------------
@pytest.fixture
def locks() -> None:
    now = timezone.now()
    LiveTask.objects.create(
        task_name="live", status="in_progress", created_at=now, started_at=now, heartbeat_at=now
    )
    LiveTask.objects.create(
        task_name="dead",
        status="in_progress",
        created_at=now - timedelta(hours=1),
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(minutes=10),
    )
    for pk, owner in (("42", "live"), ("43", "live"), ("7", "dead")):
        TaskLock.objects.create(
            model_label="testapp.project",
            object_pk=pk,
            task_name=owner,
            acquired_at=now - timedelta(minutes=5),
            expires_at=now + timedelta(minutes=55),
        )
    TaskLock.objects.create(
        model_label="testapp.document",
        object_pk="42",
        task_name="live",
        expires_at=now + timedelta(minutes=55),
    )


def test_locks_page_lists_every_lock(staff_client: Any, locks: None) -> None:
    response = staff_client.get("/tasks/locks/")
    rows = response.context["rows"]
    assert len(rows) == 4
    by_pk = {(r["model"], r["pk"]): r for r in rows}
    assert by_pk[("testapp.project", "42")]["alive"] is True
    assert by_pk[("testapp.project", "7")]["alive"] is False
    html = response.content.decode()
    assert 'href="/tasks/jobs/dead/"' in html and "5 min" in html and "in 55 min" in html
    assert html.count("Release job's 1 lock<") == 1  # only the dead owner's lock
    assert "Live owner: cannot release" in html


@pytest.mark.parametrize(
    ("query", "answer", "count"),
    [
        ("model=Project&pk=42", "project 42 is held by live.", 1),
        ("model=testapp.project&pk=7", "testapp.project 7 is held by dead.", 1),
        ("model=project&pk=99", "Nobody holds project 99.", 0),
        ("pk=42", "", 2),
        ("model=document", "", 1),
        ("task=dea", "", 1),
    ],
)
def test_who_holds_an_object(
    staff_client: Any, locks: None, query: str, answer: str, count: int
) -> None:
    response = staff_client.get(f"/tasks/locks/?{query}")
    assert response.context["answer"] == answer
    assert len(response.context["rows"]) == count


def test_locks_empty_state(staff_client: Any) -> None:
    assert "Nothing is locked." in staff_client.get("/tasks/locks/").content.decode()


# -- audit trail --------------------------------------------------------------------------------------
def test_audit_page_is_filterable(staff_client: Any) -> None:
    AuditEntry.objects.create(
        username="ops",
        user_id="1",
        action="cancel",
        targets=["a1", "a2"],
        outcome="Cancelled 2 jobs.",
        succeeded=2,
    )
    AuditEntry.objects.create(
        username="carol",
        user_id="2",
        action="retry",
        targets=["b1"],
        outcome="Refused to retry b1: still running.",
        refused=1,
    )
    response = staff_client.get("/tasks/audit/")
    html = response.content.decode()
    assert "Cancelled 2 jobs." in html and 'href="/tasks/jobs/a1/"' in html and "1 refused" in html
    assert [
        e["entry"].username for e in staff_client.get("/tasks/audit/?user=car").context["entries"]
    ] == ["carol"]
    assert [
        e["entry"].action
        for e in staff_client.get("/tasks/audit/?action=cancel").context["entries"]
    ] == ["cancel"]
    assert [
        e["entry"].username for e in staff_client.get("/tasks/audit/?target=b1").context["entries"]
    ] == ["carol"]
    assert "No operator has acted yet." not in html


# -- export --------------------------------------------------------------------------------------------
def test_export_csv_and_json_follow_the_filters(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="e1", status="failed", message='=HYPERLINK("http://evil")')
    make_record(task_name="e2", status="success")
    response = staff_client.get("/tasks/export/?status=failed&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="jobs-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["task_name", "status", "user_label"]
    assert [r[0] for r in rows[1:]] == ["e1"]
    assert rows[1][rows[0].index("message")].startswith("'=")  # no formula injection
    data = json.loads(b"".join(staff_client.get("/tasks/export/?format=json").streaming_content))
    assert [d["task_name"] for d in data] == ["e1", "e2"]
    assert staff_client.get("/tasks/export/?format=xml").status_code == 400
