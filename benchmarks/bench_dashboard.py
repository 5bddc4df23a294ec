"""Dashboard pages over 100,000 task records on the embedded default (SQLite + DatabaseCache).

    python -m benchmarks.bench_dashboard [--records 100000] [--repeat 15]

Prints, per page: median and p90 server time (Django test client, so no network) and the number
of SQL queries per request. The targets: a constant query count whatever the table size or page
size, and a median under 200 ms for the list and the overview.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from typing import Any

from benchmarks._setup import setup_django, table

STATUSES = (
    ["success"] * 80 + ["failed"] * 8 + ["cancelled"] * 4 + ["in_progress"] * 1 + ["pending"] * 1
)
FUNCS = [
    "billing.tasks.export_invoices",
    "catalog.tasks.reindex",
    "reports.tasks.quarterly",
    "crm.tasks.sync_contacts",
    "media.tasks.thumbnails",
]
USERS = [f"user{i}" for i in range(40)] + [""]


def populate(count: int) -> None:
    from django.utils import timezone

    from powercrud_async.models import LiveTask, TaskLock
    from tests.testapp.models import AsyncTaskRecord

    now = timezone.now()
    batch: list[Any] = []
    live: list[Any] = []
    locks: list[Any] = []
    for i in range(count):
        status = STATUSES[i % len(STATUSES)]
        created = now - timedelta(seconds=i * 26)  # ~30 days of history
        started = created + timedelta(seconds=1)
        end = started + timedelta(seconds=5 + i % 300)
        batch.append(
            AsyncTaskRecord(
                task_name=f"bench-{i:07d}",
                status=status,
                func_path=FUNCS[i % len(FUNCS)],
                user_label=USERS[i % len(USERS)],
                message="Completed" if status == "success" else f"step {i % 10}/10",
                created_at=created,
                started_at=started,
                percent=100.0 if status == "success" else float(i % 100),
                completed_at=end if status == "success" else None,
                failed_at=end if status == "failed" else None,
                cancelled_at=end if status == "cancelled" else None,
                duration=(end - started).total_seconds()
                if status in ("success", "failed", "cancelled")
                else None,
                affected_objects=f"Project {i % 5000}",
                cleaned_up=status in ("success", "failed", "cancelled"),
            )
        )
        if status in ("in_progress", "pending") and len(live) < 200:
            live.append(
                LiveTask(
                    task_name=f"bench-{i:07d}",
                    status=status,
                    created_at=created,
                    started_at=started,
                    heartbeat_at=now if i % 3 else now - timedelta(minutes=5),
                )
            )
            locks.append(
                TaskLock(
                    model_label="testapp.project",
                    object_pk=str(i),
                    task_name=f"bench-{i:07d}",
                    expires_at=now + timedelta(hours=1),
                )
            )
        if len(batch) == 5000:
            AsyncTaskRecord.objects.bulk_create(batch)
            batch = []
    AsyncTaskRecord.objects.bulk_create(batch)
    LiveTask.objects.bulk_create(live)
    TaskLock.objects.bulk_create(locks)
    # updated_at is auto_now: spread it like real activity.
    from django.db import connection

    with connection.cursor() as cursor:
        table_name = AsyncTaskRecord._meta.db_table
        cursor.execute(
            f"UPDATE {table_name} SET updated_at = COALESCE(completed_at, failed_at, cancelled_at, created_at)"
        )
        cursor.execute("ANALYZE")


def measure(client: Any, url: str, repeat: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        assert client.get(url).status_code == 200, url
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
        queries = len(captured)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    started = time.perf_counter()
    populate(args.records)
    print(
        f"{args.records:,} records written in {time.perf_counter() - started:.1f} s "
        f"(SQLite file, WAL, DatabaseCache)\n"
    )
    staff = get_user_model().objects.create_user("bench", is_staff=True)
    powercrud = {
        **settings.POWERCRUD_SETTINGS,
        "ASYNC_MANAGER_DEFAULT": {"manager_class": "tests.dashboard.managers.DashboardManager"},
    }
    pages = [
        ("overview", "/tasks/"),
        ("list (default)", "/tasks/jobs/"),
        ("list, 100 per page", "/tasks/jobs/?per_page=100"),
        ("list, page 2000", "/tasks/jobs/?page=2000"),
        ("list, status=failed", "/tasks/jobs/?status=failed"),
        ("list, needs attention", "/tasks/jobs/?status=attention"),
        ("list, user filter", "/tasks/jobs/?user=user7"),
        ("list, sort -duration", "/tasks/jobs/?sort=-duration"),
        ("list, search 'quarterly'", "/tasks/jobs/?q=quarterly"),
        ("list, htmx refresh", "/tasks/jobs/"),
        ("detail", "/tasks/jobs/bench-0000093/"),
        ("locks", "/tasks/locks/"),
    ]
    rows = []
    with override_settings(
        ROOT_URLCONF="tests.dashboard.urls", POWERCRUD_SETTINGS=powercrud, DEBUG=False
    ):
        client = Client()
        client.force_login(staff)
        for name, url in pages:
            if name == "list, htmx refresh":
                client.defaults.update(
                    HTTP_HX_REQUEST="true",
                    HTTP_HX_TARGET="pca-results",
                    HTTP_HX_TRIGGER="pca-results",
                )
            median, p90, queries = measure(client, url, args.repeat)
            client.defaults.clear()
            rows.append((name, f"{median:.1f}", f"{p90:.1f}", queries))
        small, large = (
            measure(client, "/tasks/jobs/?per_page=10", 3)[2],
            measure(client, "/tasks/jobs/?per_page=100", 3)[2],
        )
    print(table(rows, ("page", "median ms", "p90 ms", "queries")))
    print(
        f"\nqueries per list page: {small} at 10 rows, {large} at 100 rows "
        f"({'constant' if small == large else 'NOT constant'})"
    )


if __name__ == "__main__":
    main()
