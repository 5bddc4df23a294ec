"""Fixtures of the fault matrix: a store of each kind, the recording manager, launch helpers."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django_q.models import OrmQ

from powercrud_async import runner
from powercrud_async.stores import TaskStore
from tests.faults import jobs
from tests.test_store_contract import configured_store
from tests.testapp.managers import Recording

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[TaskStore]:
    """The lock/registry store the test runs on (the database store, or a real Redis)."""
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    with configured_store(request.param, server) as configured:
        yield configured


@pytest.fixture(autouse=True)
def _fresh_jobs() -> Iterator[None]:
    Recording.events = []
    yield
    for release in jobs.RELEASE.values():
        release.set()  # never leave a job thread waiting
    jobs.REACHED.clear()
    jobs.RELEASE.clear()


def launch(func: str, *args: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """Launch through the manager; returns the key and the envelope the broker holds for it."""
    key = Recording().launch_async_task(func, *args, **kwargs)
    envelope = next(q.args()[0] for q in OrmQ.objects.all() if q.name() == key)
    return key, envelope


def deliver(
    envelope: dict[str, Any], tmp_path: Path, store: TaskStore, *, exit_code: int = 0
) -> str:
    """One delivery of ``envelope`` by another worker process; returns what it printed
    (``exit_code``: how the process must end, ``-9`` when the job kills its worker)."""
    path = tmp_path / "envelope.pickle"
    path.write_bytes(pickle.dumps(envelope))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
    }
    server = getattr(store, "client", None)
    if server is not None:
        kwargs = server.connection_pool.connection_kwargs
        env.update(
            PCA_STORE="redis",
            PCA_REDIS_URL=f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}",
        )
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.deliver", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == exit_code, done.stderr
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def worker_thread(envelope: dict[str, Any], results: list[Any]) -> threading.Thread:
    """A started thread running one delivery of ``envelope`` here, as a worker would; it closes
    its database connections when done (PostgreSQL would otherwise keep the session open)."""

    def run() -> None:
        try:
            results.append(runner.run_task(envelope))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def events(key: str) -> list[str]:
    return [event for event, name, _ in Recording.events if name == key]
