"""Progress endpoint: requests per second in-process and SQL statements per request.

Run from the repository root: ``python -m benchmarks.bench_progress``. Measures a running task
polled through the real URL, view and middleware stack, with the progress cache on the embedded
default (DatabaseCache: its one cache read is SQL) and on an in-memory cache (what Redis gives:
no SQL at all).
"""

from __future__ import annotations

import time

from benchmarks._setup import setup_django, table

REQUESTS = 2000


def measure(cache_name: str) -> tuple[float, float]:
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from powercrud_async import progress
    from powercrud_async.progress import ProgressSnapshot

    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "powercrud_async_cache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
        "memory": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench"},
    }
    with override_settings(CACHES=caches, POWERCRUD_SETTINGS={"CACHE_NAME": cache_name}):
        progress.write(
            ProgressSnapshot(
                task_name="bench", status="in_progress", message="working", current=5, total=10
            )
        )
        client = Client()
        client.get("/async/progress/", {"task_name": "bench"})
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            for _ in range(REQUESTS):
                response = client.get("/async/progress/", {"task_name": "bench"})
            elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.status_code
    return REQUESTS / elapsed, len(queries) / REQUESTS


def main() -> None:
    setup_django()
    rows = []
    for label, cache in (
        ("DatabaseCache (embedded default)", "default"),
        ("in-memory cache (Redis-like)", "memory"),
    ):
        rps, per_request = measure(cache)
        rows.append((label, f"{rps:,.0f}", f"{per_request:.2f}"))
    print(f"Progress endpoint, {REQUESTS} requests for a running task (anonymous, no session):")
    print(table(rows, ("progress cache", "requests/s", "SQL per request")))
    print(
        "Target: 0 SQL statements of our own per request; the DatabaseCache's single read is the cache itself."
    )


if __name__ == "__main__":
    main()
