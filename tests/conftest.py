from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from powercrud_async import progress, reservations
from powercrud_async.stores import get_store
from tests.services import RedisServer, missing

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """Per-test: empty process-local reservations, progress buffer and store cache."""
    reservations._reserved.clear()
    progress.buffer._tracked.clear()
    get_store.cache_clear()
    yield
    reservations._reserved.clear()
    progress.buffer._tracked.clear()
    get_store.cache_clear()
    try:
        caches["default"].clear()
    except Exception:  # noqa: BLE001 - no database access in this test
        pass


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except FileNotFoundError:
        missing("redis-server")
    yield server
    server.stop()


class QCluster:
    """A real ``manage.py qcluster`` process on the test database."""

    def __init__(self, env: dict[str, str]):
        self.log = open(os.environ["PCA_TEST_DB"] + f".qcluster-{time.time_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "qcluster", "--settings=tests.settings"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The cluster's main process stops its own workers; signalling the whole group would
            # kill them under it and leave it waiting for them.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


@pytest.fixture
def qcluster(transactional_db: Any) -> Iterator[Callable[..., QCluster]]:
    clusters: list[QCluster] = []

    def start(**env: str) -> QCluster:
        cluster = QCluster(env)
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it is truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {predicate}")
