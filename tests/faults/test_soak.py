"""The chaos soak, short: the production tier under killed, paused workers, a restarted Redis, a
flushed cache and cleanup every 2 s; every invariant must hold (``python -m benchmarks.soak`` is
the long run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import missing, postgres_bin

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def test_short_chaos_soak_keeps_every_invariant() -> None:
    if shutil.which("redis-server") is None:
        missing("redis-server")
    if postgres_bin() is None:
        missing("postgresql")
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PCA_PG_PORT")
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--jobs", "120", "--seed", "7"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = done.stdout
    assert done.returncode == 0, report + done.stderr[-3000:]
    assert "VIOLATED" not in report
    assert "kill" in report or "stop" in report  # faults were injected
