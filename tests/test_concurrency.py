"""Several OS processes launching at the same instant, on the database store and on Redis.

Each process runs ``WORKER`` (Django on ``tests.settings``, so it uses the test database file whose
path ``PCA_TEST_DB`` hands down) and reports one JSON line per launch. A file barrier releases all
processes of a round together, so they really contend for the same locks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.stores import TaskStore
from tests.cluster import ROOT
from tests.services import RedisServer
from tests.test_store_contract import configured_store

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 4
ROUNDS = 20
LAUNCHES = 50
NAMESPACE = uuid.UUID("6f1c7f5e-8a52-4a57-9d47-3d1f0e0b9a11")

WORKER = textwrap.dedent(
    """
    import json, os, sys, time, uuid
    import django

    proc, mode, count, barrier_dir = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    PROCESSES = int(sys.argv[5])
    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings
    if os.environ.get("PCA_STORE") == "redis":
        override_settings(POWERCRUD_SETTINGS={
            **settings.POWERCRUD_SETTINGS, "LOCK_STORE": "redis", "REDIS_URL": os.environ["PCA_REDIS_URL"],
        }).enable()
    from powercrud_async.async_manager import AsyncManager
    from powercrud_async.exceptions import ConflictError, LockStoreUnavailable
    from powercrud_async.stores import get_store

    NS = uuid.UUID(os.environ["PCA_NS"])
    manager = AsyncManager()
    get_store().holders([("testapp.project", "0")])  # connect (and load scripts) before the race

    def barrier(name):
        open(os.path.join(barrier_dir, f"{name}-{proc}"), "w").close()
        while sum(1 for f in os.listdir(barrier_dir) if f.startswith(name + "-")) < PROCESSES:
            time.sleep(0.0005)

    def ids(number):
        # The same objects, spelt differently by each process: the store sees one canonical key.
        pks = [number * 10 + 1, number * 10 + 2]
        doc = uuid.uuid5(NS, str(number))
        return {
            "testapp.Project": pks if proc % 2 else [str(pk) for pk in pks],
            "testapp.Tag": [f"tag-{number}"],
            "testapp.Document": [doc if proc % 2 else str(doc).upper()],
        }

    def launch(key, conflict_ids):
        started = time.time()
        return {"started": started, **attempt(key, conflict_ids)}

    def attempt(key, conflict_ids):
        try:
            manager.launch_async_task("tests.testapp.tasks.noop", conflict_ids=conflict_ids, task_key=key)
            return {"key": key, "outcome": "won"}
        except ConflictError as exc:
            return {"key": key, "outcome": "conflict", "holders": exc.holders}
        except LockStoreUnavailable as exc:
            return {"key": key, "outcome": "unavailable", "error": str(exc)}
        except Exception as exc:
            return {"key": key, "outcome": "error", "error": f"{type(exc).__name__}: {exc}"}

    if mode == "same":
        for number in range(count):
            barrier(f"round{number}")
            result = launch(f"r{number}-p{proc}", ids(number))
            print(json.dumps({"round": number, **result}), flush=True)
    else:
        barrier("start")
        for number in range(count):
            mine = 1000 + proc * count + number  # disjoint across processes and launches
            result = launch(f"p{proc}-{number}", ids(mine))
            print(json.dumps({"round": number, **result}), flush=True)
    """
)


def race(tmp_path: Path, mode: str, count: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """Run ``PROCESSES`` workers to completion; every line each prints, parsed."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    barrier_dir = tmp_path / "barrier"
    barrier_dir.mkdir()
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "PCA_NS": str(NAMESPACE),
        **env,
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(p),
                mode,
                str(count),
                str(barrier_dir),
                str(PROCESSES),
            ],
            cwd=ROOT,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    results: list[dict[str, Any]] = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err[-3000:]
            results.extend(json.loads(line) for line in out.splitlines() if line.startswith("{"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def canonical_keys(number: int) -> list[tuple[str, str]]:
    doc = str(uuid.uuid5(NAMESPACE, str(number)))
    return [
        ("testapp.document", doc),
        ("testapp.project", str(number * 10 + 1)),
        ("testapp.project", str(number * 10 + 2)),
        ("testapp.tag", f"tag-{number}"),
    ]


def check_same_objects(results: list[dict[str, Any]], store: TaskStore) -> None:
    assert len(results) == PROCESSES * ROUNDS
    assert not [r for r in results if r["outcome"] not in ("won", "conflict")], (
        "a store error is not a conflict"
    )
    for number in range(ROUNDS):
        this = [r for r in results if r["round"] == number]
        winners = [r["key"] for r in this if r["outcome"] == "won"]
        assert len(winners) == 1, f"round {number}: {this}"
        [winner] = winners
        for loser in (r for r in this if r["outcome"] == "conflict"):
            assert loser["holders"] == [winner]
            assert store.get(loser["key"]) is None
        row = store.get(winner)
        assert row is not None and row.status == "pending"
        keys = canonical_keys(number)
        assert store.holders(keys) == {key: winner for key in keys}
    assert len(store.active()) == ROUNDS
    assert len(store.locks()) == ROUNDS * 4


def check_disjoint_objects(results: list[dict[str, Any]], store: TaskStore) -> None:
    assert len(results) == PROCESSES * LAUNCHES
    assert Counter(r["outcome"] for r in results) == {"won": PROCESSES * LAUNCHES}, [
        r for r in results if r["outcome"] != "won"
    ][:5]
    active = {info.task_name for info in store.active()}
    assert active == {r["key"] for r in results}
    owners: dict[str, int] = Counter(lock.task_name for lock in store.locks())
    assert owners == {key: 4 for key in active}
    for proc in range(PROCESSES):
        for number in (0, LAUNCHES - 1):
            keys = canonical_keys(1000 + proc * LAUNCHES + number)
            assert store.holders(keys) == {key: f"p{proc}-{number}" for key in keys}


def test_one_winner_per_round_on_the_database(tmp_path: Path) -> None:
    results = race(tmp_path, "same", ROUNDS, {})
    with configured_store("database") as store:
        check_same_objects(results, store)
    assert LiveTask.objects.count() == ROUNDS
    assert TaskLock.objects.count() == ROUNDS * 4


def test_no_refusals_for_disjoint_objects_on_the_database(tmp_path: Path) -> None:
    results = race(tmp_path, "disjoint", LAUNCHES, {})
    with configured_store("database") as store:
        check_disjoint_objects(results, store)
    assert LiveTask.objects.count() == PROCESSES * LAUNCHES
    assert TaskLock.objects.count() == PROCESSES * LAUNCHES * 4


@pytest.mark.redis
def test_one_winner_per_round_on_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    with configured_store("redis", redis_server) as store:
        results = race(
            tmp_path, "same", ROUNDS, {"PCA_STORE": "redis", "PCA_REDIS_URL": redis_server.url}
        )
        check_same_objects(results, store)
    assert not LiveTask.objects.exists() and not TaskLock.objects.exists()


@pytest.mark.redis
def test_no_refusals_for_disjoint_objects_on_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with configured_store("redis", redis_server) as store:
        results = race(
            tmp_path,
            "disjoint",
            LAUNCHES,
            {"PCA_STORE": "redis", "PCA_REDIS_URL": redis_server.url},
        )
        check_disjoint_objects(results, store)
    assert not LiveTask.objects.exists() and not TaskLock.objects.exists()
