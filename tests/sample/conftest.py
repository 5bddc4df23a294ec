"""Fixtures for the sample's tests, which run in their own pytest invocation:

    pytest tests/sample --ds=sample.test_settings

Under the main suite's settings (``tests.settings``, no ``sample`` app) this directory is not
collected at all, so a plain ``pytest`` never fails on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import QCluster, clusters, wait_until

__all__ = ["QCluster", "wait_until"]

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


@pytest.fixture
def sample_qcluster(transactional_db: Any) -> Iterator[Callable[..., QCluster]]:
    """Start real qcluster processes on the test database; all stopped after the test."""
    yield from clusters()
