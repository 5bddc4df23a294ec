"""Realistic dashboard data without a cluster: records, timeline, logs, locks, registry rows."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from powercrud_async.models import LiveTask, TaskEvent, TaskLock, TaskLogEntry
from tests.testapp.models import AsyncTaskRecord

FUNCS = [
    "billing.tasks.export_invoices",
    "catalog.tasks.reindex_products",
    "reports.tasks.quarterly_revenue",
    "crm.tasks.sync_contacts",
    "media.tasks.render_thumbnails",
    "mail.tasks.send_digest",
]
USERS = ["alice", "bob", "carol", "ops-bot", ""]

TRACEBACK = """Traceback (most recent call last):
  File "powercrud_async/runner.py", line 158, in run_task
    result = func(*envelope.get("args", ()), **kwargs)
  File "reports/tasks.py", line 78, in quarterly_revenue
    totals = load_sales(quarter)
  File "reports/sales.py", line 31, in load_sales
    raise KeyError(f"Column 'revenue_eur' missing from source table 'sales_{quarter}'")
KeyError: "Column 'revenue_eur' missing from source table 'sales_q3'"
"""


def build(count: int = 36) -> dict[str, Any]:
    """Fill the tables; returns the keys of a running, a failed and a succeeded job."""
    now = timezone.now()
    records = []
    keys: dict[str, str] = {}
    plan = ["in_progress"] * 3 + ["pending"] * 2 + ["failed"] * 4 + ["cancelled"] * 2
    plan += ["success"] * max(0, count - len(plan))
    for i, status in enumerate(plan):
        func = FUNCS[i % len(FUNCS)]
        key = f"{i:02d}{'abcdef0123456789'[i % 16]}7c1e-4b2a-9d3f-{i:012d}"
        created = now - timedelta(minutes=7 * i + 3, seconds=11 * i)
        started = created + timedelta(seconds=2)
        rec: dict[str, Any] = dict(
            task_name=key,
            status=status,
            func_path=func,
            user_label=USERS[i % len(USERS)],
            created_at=created,
            started_at=started if status != "pending" else None,
            affected_objects=f"Project {40 + i}, Project {41 + i}",
            args_payload=[40 + i],
            kwargs_payload={"dry_run": False, "batch": 500},
        )
        if status == "in_progress":
            pct = [35.0, 72.0, 8.0][i % 3]
            rec.update(
                percent=pct,
                message=f"Processed {int(pct * 12)} of 1200 rows",
                progress_payload=f"Processed {int(pct * 12)} of 1200 rows",
            )
        elif status == "pending":
            rec.update(message="Queued")
        elif status == "failed":
            error = [
                "KeyError: \"Column 'revenue_eur' missing from source table 'sales_q3'\"",
                "TimeoutError: upstream CRM did not answer within 30 s",
                "ValueError: <script>alert('x')</script> is not a valid SKU",
                "PermissionError: [Errno 13] Permission denied: '/srv/media/cache'",
            ][i % 4]
            rec.update(
                message=f"Failed: {error}",
                result_payload=error,
                failed_at=started + timedelta(seconds=40 + i),
                duration=40.0 + i,
            )
        elif status == "cancelled":
            rec.update(
                message="Cancelled by an operator",
                cancelled_at=started + timedelta(seconds=12),
                duration=12.0,
                result_payload="Cancelled by an operator",
            )
        else:
            rec.update(
                message="Completed",
                percent=100.0,
                completed_at=started + timedelta(seconds=5 + i * 3),
                duration=5.0 + i * 3,
                result_payload={"rows": 1200 + i, "written": 1180 + i, "skipped": 20},
            )
        if i == 9:
            rec["retry_of"] = records[5].task_name if len(records) > 5 else ""
        records.append(AsyncTaskRecord(**rec))
        keys.setdefault(status, key)
    AsyncTaskRecord.objects.bulk_create(records)
    # updated_at is auto_now: spread it like real activity.
    for rec in records:
        when = rec.completed_at or rec.failed_at or rec.cancelled_at or (now - timedelta(seconds=3))
        AsyncTaskRecord.objects.filter(pk=rec.pk).update(updated_at=when)
    running = [r for r in records if r.status == "in_progress"]
    for r in [*running, *[r for r in records if r.status == "pending"]]:
        LiveTask.objects.create(
            task_name=r.task_name,
            status=r.status,
            func_path=r.func_path,
            created_at=r.created_at,
            started_at=r.started_at,
            heartbeat_at=now - timedelta(seconds=2) if r.status == "in_progress" else None,
            conflict_ids={
                "testapp.project": [
                    str(100 + 2 * records.index(r)),
                    str(101 + 2 * records.index(r)),
                ]
            },
            manager_class="tests.dashboard.managers.DashboardManager",
            attempts=1,
        )
        for pk in (100 + 2 * records.index(r), 101 + 2 * records.index(r)):
            TaskLock.objects.create(
                model_label="testapp.project",
                object_pk=str(pk),
                task_name=r.task_name,
                acquired_at=r.created_at,
                expires_at=now + timedelta(minutes=55),
            )
    # a dead one: running in the registry, silent for two minutes
    dead = running[-1]
    LiveTask.objects.filter(task_name=dead.task_name).update(
        heartbeat_at=now - timedelta(minutes=2)
    )
    for r in records[:14]:
        events = [("create", "pending", "Queued", r.created_at)]
        if r.started_at:
            events.append(("start", "in_progress", "Started", r.started_at))
            for step in (25, 50):
                events.append(
                    (
                        "progress",
                        "",
                        f"Processed {step * 12} of 1200 rows ({step}%)",
                        r.started_at + timedelta(seconds=step // 10),
                    )
                )
        end = r.completed_at or r.failed_at or r.cancelled_at
        if end:
            ev = {"success": "complete", "failed": "fail", "cancelled": "cancel"}[r.status]
            events.append((ev, r.status, r.message, end))
            events.append(("cleanup", "", "Cleaned up: 2 lock(s) released", end))
        TaskEvent.objects.bulk_create(
            [
                TaskEvent(task_name=r.task_name, event=e, status=s, message=m, created_at=t)
                for e, s, m, t in events
            ]
        )
        TaskLogEntry.objects.bulk_create(
            [
                TaskLogEntry(
                    task_name=r.task_name,
                    created_at=r.created_at + timedelta(seconds=3),
                    level=logging.INFO,
                    level_name="INFO",
                    logger_name="reports.tasks",
                    message="Loading 1200 rows from the warehouse",
                ),
                TaskLogEntry(
                    task_name=r.task_name,
                    created_at=r.created_at + timedelta(seconds=9),
                    level=logging.WARNING,
                    level_name="WARNING",
                    logger_name="reports.tasks",
                    message="2 rows had no currency; skipped",
                ),
                TaskLogEntry(
                    task_name=r.task_name,
                    created_at=r.created_at + timedelta(seconds=12),
                    level=logging.DEBUG,
                    level_name="DEBUG",
                    logger_name="reports.sql",
                    message="SELECT * FROM sales_q3 WHERE ...\n" + "-- plan: seq scan\n" * 3,
                ),
            ]
        )
    failed = next(
        r for r in records if r.status == "failed" and r.func_path.endswith("quarterly_revenue")
    )
    TaskLogEntry.objects.create(
        task_name=failed.task_name,
        created_at=failed.failed_at,
        level=logging.ERROR,
        level_name="ERROR",
        logger_name="reports.tasks",
        message="Quarterly revenue failed\n" + TRACEBACK,
    )
    try:
        from django_q.models import Task

        Task.objects.create(
            id="f" * 32,
            name=failed.task_name,
            func="powercrud_async.runner.run_task",
            started=failed.started_at,
            stopped=failed.failed_at,
            success=False,
            result=f"\"Column 'revenue_eur' missing\" : {TRACEBACK}",
        )
    except Exception:  # noqa: BLE001 - the traceback fallback is optional
        pass
    from powercrud_async.models import AuditEntry

    cancelled = [r.task_name for r in records if r.status == "cancelled"]
    failed_keys = [r.task_name for r in records if r.status == "failed"]
    for minutes, (user, action, targets, outcome, ok, refused) in enumerate(
        [
            ("alice", "cancel", cancelled, f"Cancelled {len(cancelled)} jobs.", len(cancelled), 0),
            ("bob", "retry", failed_keys[:1], "Retried 1 job.", 1, 0),
            (
                "alice",
                "release",
                [running[0].task_name],
                f"Refused to release the locks of {running[0].task_name}: "
                "still live (running with a live heartbeat; its locks stay until it ends).",
                0,
                1,
            ),
            (
                "carol",
                "delete",
                [r.task_name for r in records[-3:]],
                "Deleted 3 job records.",
                3,
                0,
            ),
        ]
    ):
        AuditEntry.objects.create(
            created_at=now - timedelta(minutes=5 + minutes * 13),
            username=user,
            user_id="1",
            action=action,
            targets=targets,
            outcome=outcome,
            succeeded=ok,
            refused=refused,
        )
    return {
        "running": running[0].task_name,
        "failed": failed.task_name,
        "success": keys["success"],
        "dead": dead.task_name,
    }
