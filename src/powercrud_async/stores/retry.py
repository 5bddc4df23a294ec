"""Bounded retry of transient store failures, then ``LockStoreUnavailable``."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from .. import conf
from ..exceptions import LockStoreUnavailable

T = TypeVar("T")
logger = logging.getLogger("powercrud_async.stores")


def retrying(
    operation: str, func: Callable[[], T], transient: tuple[type[BaseException], ...]
) -> T:
    """Run ``func``; on a transient error retry with jittered backoff, then raise our error."""
    attempts = conf.get("STORE_RETRIES") + 1
    delay = 0.02
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except transient as exc:
            if attempt == attempts:
                raise LockStoreUnavailable(
                    f"Lock store unavailable: {operation} failed {attempts} times "
                    f"({type(exc).__name__}: {exc}). Nothing was changed; try again later."
                ) from exc
            logger.warning("%s failed (%s), retry %d/%d", operation, exc, attempt, attempts - 1)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover
