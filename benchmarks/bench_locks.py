"""Locking 10, 1,000 and 10,000 objects: wall time and round trips, embedded default vs Redis.

Run from the repository root::

    python -m benchmarks.bench_locks

Round trips are SQL statements (``CaptureQueriesContext``) for the database store and commands
sent by the client (its ``execute_command``, wrapped) for Redis. Targets: Redis takes one round
trip whatever the size; the database at most one statement per 500 objects plus a constant.
The script starts its own redis-server on loopback and stops it before it exits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._setup import setup_django, table

SIZES = (10, 1_000, 10_000)
REPEATS = 3
DB_CONSTANT = 8


class RoundTrips:
    """Counts what one store operation sends to its server."""

    def __init__(self, store: Any):
        self.store = store
        self.redis_calls = 0
        client = getattr(store, "client", None)
        if client is not None:
            original = client.execute_command

            def counting(*args: Any, **kwargs: Any) -> Any:
                self.redis_calls += 1
                return original(*args, **kwargs)

            client.execute_command = counting

    def measure(self, operation: Callable[[], Any]) -> tuple[float, int, Any]:
        """``(seconds, round trips, result)`` of one call."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.redis_calls = 0
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = operation()
            elapsed = time.perf_counter() - started
        return elapsed, len(queries) + self.redis_calls, result


def reset(store: Any) -> None:
    from powercrud_async.models import LiveTask, TaskLock

    TaskLock.objects.all().delete()
    LiveTask.objects.all().delete()
    client = getattr(store, "client", None)
    if client is not None:
        client.flushdb()


def bench(name: str, store: Any) -> list[dict[str, Any]]:
    counter = RoundTrips(store)
    # Warm up: connections open, Redis scripts loaded (a one-off per server).
    store.acquire("warm-up", [("testapp.project", "-1")], 60)
    store.holders([("testapp.project", "-1")])
    store.release("warm-up")
    rows = []
    for size in SIZES:
        keys = [("testapp.project", str(i)) for i in range(size)]
        best: dict[str, tuple[float, int]] = {}
        for _ in range(REPEATS):
            reset(store)
            runs = {
                "acquire": counter.measure(lambda keys=keys: store.acquire("bulk", keys, 3600)),
                "refused": counter.measure(lambda keys=keys: store.acquire("other", keys, 3600)),
                "release": counter.measure(lambda: store.release("bulk")),
            }
            assert runs["acquire"][2] == {}, "acquire failed"
            assert len(runs["refused"][2]) == size, "the conflicting acquire was not refused"
            assert runs["release"][2] == size, "release missed locks"
            for op, (seconds, trips, _) in runs.items():
                if op not in best or seconds < best[op][0]:
                    best[op] = (seconds, trips)
        rows.append({"store": name, "objects": size, **best})
    reset(store)
    return rows


def main() -> int:
    setup_django()
    from django.conf import settings
    from django.test.utils import override_settings

    from powercrud_async.stores import get_store
    from powercrud_async.stores.database import DatabaseTaskStore
    from tests.services import RedisServer

    results = bench("database (SQLite)", DatabaseTaskStore())
    server = RedisServer()
    try:
        options = {**settings.POWERCRUD_SETTINGS, "LOCK_STORE": "redis", "REDIS_URL": server.url}
        with override_settings(POWERCRUD_SETTINGS=options):
            get_store.cache_clear()
            results += bench("redis", get_store())
            get_store.cache_clear()
    finally:
        server.stop()

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f}"

    print("Best of", REPEATS, "runs; times in ms, round trips = SQL statements or Redis commands\n")
    print(
        table(
            [
                (
                    r["store"],
                    f"{r['objects']:,}",
                    ms(r["acquire"][0]),
                    r["acquire"][1],
                    ms(r["refused"][0]),
                    r["refused"][1],
                    ms(r["release"][0]),
                    r["release"][1],
                )
                for r in results
            ],
            (
                "store",
                "objects",
                "acquire ms",
                "trips",
                "refused ms",
                "trips",
                "release ms",
                "trips",
            ),
        )
    )
    print()
    by_size = {(r["store"].split()[0], r["objects"]): r for r in results}
    ratio_rows = []
    missed = []
    for size in SIZES:
        db, rd = by_size[("database", size)], by_size[("redis", size)]
        ratio_rows.append(
            (
                f"{size:,}",
                f"{db['acquire'][0] / rd['acquire'][0]:.1f}x",
                f"{db['refused'][0] / rd['refused'][0]:.1f}x",
            )
        )
        limit = size // 500 + DB_CONSTANT
        for op in ("acquire", "refused", "release"):
            if rd[op][1] != 1:
                missed.append(f"redis {op} of {size:,} took {rd[op][1]} round trips (target 1)")
            if db[op][1] > limit:
                missed.append(
                    f"database {op} of {size:,} took {db[op][1]} statements (target <= {limit})"
                )
    print(table(ratio_rows, ("objects", "database/redis acquire", "database/redis refused")))
    print()
    print(
        f"Targets: redis 1 round trip per operation; database <= objects/500 + {DB_CONSTANT} statements."
    )
    if missed:
        print("MISSED:\n  " + "\n  ".join(missed))
        return 1
    print("All round-trip targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
