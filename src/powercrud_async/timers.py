"""One daemon thread per process that runs every deferred step of this package: a running job's
ticks (heartbeat, progress flush, cancel check) and coalesced record and progress writes.

Starting a thread per job, or per deferred write, cost more than a short job itself; here a job
costs a heap push and, when it ends, a flag. The thread is started on first use and again in a
forked child (django-q2 forks its workers), and it closes its database connections whenever
nothing is scheduled, so an idle process holds none.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

from django.db import connections

__all__ = ["Timer", "call_later", "scheduler"]

logger = logging.getLogger("powercrud_async.timers")


class Timer:
    """One scheduled call (repeated every ``every`` seconds if given) until cancelled."""

    __slots__ = ("action", "cancelled", "every", "_scheduler")

    def __init__(
        self, scheduler: Scheduler, action: Callable[[], object], every: float | None
    ) -> None:
        self._scheduler = scheduler
        self.action = action
        self.every = every
        self.cancelled = False

    def cancel(self, *, wait: bool = False) -> None:
        """No further runs. ``wait``: also wait for a run under way in the timer thread to end
        (not from that thread itself), so nothing of this timer's happens after this returns."""
        self._scheduler.cancel(self, wait=wait)


class Scheduler:
    """A heap of due times served by one daemon thread; cancelled timers are dropped lazily."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._running: Timer | None = None
        self._wake_at = float("inf")

    def call_later(
        self, delay: float, action: Callable[[], object], *, every: float | None = None
    ) -> Timer:
        """Run ``action`` in the timer thread after ``delay`` seconds (then every ``every``)."""
        timer = Timer(self, action, every)
        with self._cond:
            due = self.clock() + max(0.0, delay)
            heapq.heappush(self._heap, (due, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="powercrud-async-timers", daemon=True
                )
                self._thread.start()
            elif due < self._wake_at or due <= self.clock():
                self._cond.notify()
        return timer

    def cancel(self, timer: Timer, *, wait: bool) -> None:
        with self._cond:
            timer.cancelled = True
            if wait and threading.current_thread() is not self._thread:
                while self._running is timer:
                    self._cond.wait()

    def _next_due(self) -> tuple[float, Timer]:
        """Pop the first due, live timer and its due time (caller holds the condition); wait
        until there is one."""
        while True:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                self._wake_at = float("inf")
                self._cond.release()
                try:
                    connections.close_all()  # idle: hold no connection
                finally:
                    self._cond.acquire()
                if not self._heap:
                    self._cond.wait()
                continue
            due, _, timer = self._heap[0]
            delay = due - self.clock()
            if delay <= 0:
                heapq.heappop(self._heap)
                return due, timer
            self._wake_at = due
            self._cond.wait(delay)

    def _loop(self) -> None:
        with self._cond:
            while True:
                due, timer = self._next_due()
                self._running = timer
                self._cond.release()
                try:
                    timer.action()
                except Exception:  # noqa: BLE001 - one failing step never stops the others
                    logger.exception("A deferred step of powercrud_async failed")
                finally:
                    self._cond.acquire()
                    self._running = None
                    self._cond.notify_all()
                if timer.every is not None and not timer.cancelled:
                    # On its beat; after a pause (a stopped process) once at once, not a burst.
                    due = max(due + timer.every, self.clock())
                    heapq.heappush(self._heap, (due, next(self._seq), timer))


scheduler = Scheduler()
os.register_at_fork(after_in_child=scheduler._reset)


def call_later(delay: float, action: Callable[[], object], *, every: float | None = None) -> Timer:
    """Schedule ``action`` on this process's timer thread (see ``Scheduler.call_later``)."""
    return scheduler.call_later(delay, action, every=every)
