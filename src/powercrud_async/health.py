"""Health probes: is the cache shared and working, does a qcluster run jobs, is the store up."""

from __future__ import annotations

import logging
import time
import uuid

from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from . import broker, conf, progress

logger = logging.getLogger("powercrud_async.health")


def probe(token: str) -> str:
    """The job ``validate_qcluster`` enqueues."""
    return token


def validate_cache() -> bool:
    """True if the configured cache stores and returns values and is shared between processes."""
    try:
        cache = progress.cache()
    except Exception:  # noqa: BLE001
        logger.exception("Cache %r is not configured", conf.get("CACHE_NAME"))
        return False
    if isinstance(cache, (LocMemCache, DummyCache)):
        return False
    key = f"powercrud_async:probe:{uuid.uuid4().hex}"
    try:
        cache.set(key, "ok", 30)
        ok = cache.get(key) == "ok"
        cache.delete(key)
        return ok
    except Exception:  # noqa: BLE001
        logger.exception("Cache %r failed a probe", conf.get("CACHE_NAME"))
        return False


def validate_qcluster(timeout_ms: int | None = None) -> bool:
    """Enqueue a real probe job and wait up to ``timeout_ms`` for a worker to run it."""
    timeout_ms = conf.get("QCLUSTER_PROBE_TIMEOUT_MS") if timeout_ms is None else timeout_ms
    token = uuid.uuid4().hex
    try:
        task_id = broker.enqueue_plain("powercrud_async.health.probe", token)
    except Exception:  # noqa: BLE001
        logger.exception("Could not enqueue the qcluster probe")
        return False
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        if broker.saved_result(task_id) == token:
            return True
        time.sleep(0.05)
    return bool(broker.saved_result(task_id) == token)


def validate_store() -> bool:
    from .stores import get_store

    try:
        get_store().active()
        return True
    except Exception:  # noqa: BLE001
        logger.exception("The lock store is unavailable")
        return False


class SystemHealth(dict):
    """``{"cache", "store", "qcluster", "ok"}``; true only when ``ok``, so ``if
    validate_async_system():`` gates launches as it does in PowerCRUD."""

    def __bool__(self) -> bool:
        return bool(self.get("ok"))


def validate_system() -> SystemHealth:
    status = SystemHealth(
        cache=validate_cache(), store=validate_store(), qcluster=validate_qcluster()
    )
    status["ok"] = all(status.values())
    return status
