"""Fixtures for the sample's tests, which run in their own pytest invocation:

    pytest tests/sample --ds=sample.test_settings

Under the main suite's settings (``tests.settings``, no ``sample`` app) this directory is not
collected at all, so a plain ``pytest`` never fails on it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sample_settings() -> bool:
    try:
        from django.conf import settings

        return "sample" in settings.INSTALLED_APPS
    except Exception:  # noqa: BLE001 - no or other settings: not ours to run
        return False


if not _sample_settings():
    collect_ignore_glob = ["test_*.py"]


def run_queued() -> list[Any]:
    """Run every job waiting in the ORM broker in this process, through the real runner."""
    from django_q.models import OrmQ

    from powercrud_async.runner import run_task

    results = []
    while True:
        row = OrmQ.objects.order_by("id").first()
        if row is None:
            return results
        row.delete()
        try:
            results.append(run_task(*row.task["args"]))
        except Exception as exc:  # noqa: BLE001 - a failing job re-raises, as in a worker
            results.append(exc)


class SampleCluster:
    """A real ``qcluster`` process on the sample's test database."""

    def __init__(self, env: dict[str, str]):
        # Not settings.SETTINGS_MODULE: it reads None while settings are overridden in a test.
        settings_module = os.environ["DJANGO_SETTINGS_MODULE"]
        self.log_path = Path(tempfile.mkdtemp(prefix="pca-sample-q-")) / "qcluster.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "qcluster", f"--settings={settings_module}"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The main process stops its workers; a SIGTERM to the whole group would kill them
            # under it and leave it waiting for them until the timeout.
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
        shutil.rmtree(self.log_path.parent, ignore_errors=True)


@pytest.fixture
def sample_qcluster(transactional_db: Any) -> Iterator[Callable[..., SampleCluster]]:
    clusters: list[SampleCluster] = []

    def start(**env: str) -> SampleCluster:
        cluster = SampleCluster(env)
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {predicate}")
