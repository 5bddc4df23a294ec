"""The sample on the production tier, for real: PostgreSQL from ``DATABASE_URL`` and Redis (cache,
lock store, django-q2 broker) from ``REDIS_URL``, driven through ``manage.py`` and a qcluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sample.conftest import ROOT
from tests.services import PostgresServer, RedisServer, missing

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture
def production_env() -> Iterator[dict[str, str]]:
    try:
        redis = RedisServer()
    except FileNotFoundError:
        missing("redis-server")
    try:
        postgres = PostgresServer()
    except FileNotFoundError:
        redis.stop()
        missing("postgresql")
    try:
        postgres.create_database("library")
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
        }
        yield {
            **base,
            "DJANGO_SETTINGS_MODULE": "sample.settings",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{postgres.port}/library",
            "REDIS_URL": redis.url,
            "SAMPLE_WORK_DELAY": "0.02",
        }
    finally:
        redis.stop()
        postgres.stop()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def records(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, django; django.setup()\n"
        "from powercrud_async.stores import get_store\n"
        "from django.core.cache import caches\n"
        "from django.db import connection\n"
        "from sample.models import AsyncTaskRecord\n"
        "print(json.dumps({'store': type(get_store()).__name__, 'cache': type(caches['default']).__name__,\n"
        "  'db': connection.vendor,\n"
        "  'records': sorted([r.func_path.rsplit('.', 1)[1], r.status]\n"
        "                    for r in AsyncTaskRecord.objects.all())}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sample_runs_on_postgres_and_redis(production_env: dict[str, str]) -> None:
    env = production_env
    manage(env, "migrate", "--noinput")
    assert "username: demo" in manage(env, "demo_setup", "--skip-migrate")
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out = manage(env, "demo_jobs", "--long-steps", "3", "--pause", "0.1")
        assert "conflict (refused)   Not started: book" in out
        expected = [
            ["audit_prices", "success"],
            ["bulk_update_books", "success"],
            ["count_words", "success"],
            ["count_words", "success"],
            ["import_catalogue", "failed"],
            ["reindex_library", "cancelled"],
            ["reindex_library", "success"],
        ]
        deadline = time.monotonic() + 60
        state = records(env)
        while state["records"] != expected and time.monotonic() < deadline:
            time.sleep(0.5)
            state = records(env)
        assert state == {
            "store": "RedisTaskStore",
            "cache": "RedisCache",
            "db": "postgresql",
            "records": expected,
        }
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
