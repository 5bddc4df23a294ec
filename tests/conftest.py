from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from powercrud_async import progress
from powercrud_async.lifecycle import reservations
from powercrud_async.stores import get_store
from powercrud_async.tracking import validation, writer
from tests.cluster import QCluster, clusters, wait_until
from tests.services import MemcachedServer, RedisServer, missing

__all__ = ["QCluster", "wait_until"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """Per-test: empty process-local state (reservations, progress buffer, store, tracking)."""

    def reset() -> None:
        reservations.clear()
        progress.buffer._tracked.clear()
        progress.outside.reset()
        get_store.cache_clear()
        writer.reset_state()
        validation.clear_cache()

    reset()
    yield
    reset()
    try:
        caches["default"].clear()
    except Exception:  # noqa: BLE001 - no database access in this test
        pass


class ManualClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def progress_clock() -> Iterator[ManualClock]:
    """The progress buffer judges "a write is due" on this clock instead of real time."""
    clock = ManualClock()
    real, progress.buffer.clock = progress.buffer.clock, clock
    yield clock
    progress.buffer.clock = real


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except FileNotFoundError:
        missing("redis-server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    try:
        server = MemcachedServer()
    except FileNotFoundError:
        missing("memcached")
    yield server
    server.stop()


@pytest.fixture
def qcluster(transactional_db: Any) -> Iterator[Callable[..., QCluster]]:
    """Start real qcluster processes on the test database; all stopped after the test."""
    yield from clusters()
