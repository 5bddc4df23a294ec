"""Shared set-up for the benchmark scripts: a fresh embedded-default database, optionally Redis.

Run scripts from the repository root: ``python -m benchmarks.bench_locks``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(*, production: bool = False, **env: str) -> None:
    """Configure Django on ``tests.settings`` with a brand-new SQLite file, migrated.

    ``production``: a PostgreSQL and a Redis server of its own on loopback instead (Redis as the
    cache, the lock store and django-q2's broker), stopped when the script exits.
    """
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    os.environ.setdefault(
        "PCA_TEST_DB", os.path.join(tempfile.mkdtemp(prefix="pca-bench-"), "bench.sqlite3")
    )
    if production:
        start_production_servers()
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def start_production_servers() -> None:
    """PostgreSQL and Redis for this process and the qclusters it starts (they inherit the
    environment), with a database created for the benchmark."""
    import atexit

    from tests.services import PostgresServer, RedisServer

    postgres, redis = PostgresServer(), RedisServer()
    atexit.register(redis.stop)
    atexit.register(postgres.stop)
    postgres.create_database("bench_pca")
    os.environ.update(
        PCA_DB="postgres",
        PCA_PG_PORT=str(postgres.port),
        PCA_PG_NAME="bench_pca",
        PCA_REDIS_URL=redis.url,
    )


def table(rows: list[tuple[object, ...]], headers: tuple[str, ...]) -> str:
    """A plain-text table, so figures paste into docs and notes unchanged."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
