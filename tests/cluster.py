"""A real ``manage.py qcluster`` process for end-to-end tests, and a polling helper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class QCluster:
    """``qcluster`` on the test database of ``settings_module`` (the env var it inherits)."""

    def __init__(self, env: dict[str, str], settings_module: str | None = None):
        # Not settings.SETTINGS_MODULE: it reads None while settings are overridden in a test.
        settings_module = settings_module or os.environ["DJANGO_SETTINGS_MODULE"]
        self.log_path = Path(tempfile.mkdtemp(prefix="pca-qcluster-")) / "qcluster.log"
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


def clusters() -> Iterator[Callable[..., QCluster]]:
    """Body of a fixture: yields ``start(**env)``; stops every cluster it started afterwards."""
    started: list[QCluster] = []

    def start(**env: str) -> QCluster:
        cluster = QCluster(env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
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
