"""The per-process timer thread: one thread serves every deferred step; cancelling waits for a run
under way when asked to; a failing step never stops the others. Interleavings are forced with
events and an injected clock, never sleeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from powercrud_async.timers import Scheduler

WAIT = 10  # seconds a test waits for an event it expects; it fails, never hangs, past that


class Clock:
    """A clock the test moves; the scheduler sleeps on real time, so each test wakes it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scheduler(clock: Clock) -> Iterator[Scheduler]:
    yield Scheduler(clock)


def test_a_due_call_runs_on_one_shared_thread(scheduler: Scheduler) -> None:
    ran: list[str] = []
    done = threading.Event()
    scheduler.call_later(0, lambda: ran.append(threading.current_thread().name))
    scheduler.call_later(0, done.set)
    assert done.wait(WAIT)
    assert ran == ["powercrud-async-timers"]
    assert threading.current_thread().name not in ran


def test_a_call_not_yet_due_waits_for_its_time(scheduler: Scheduler, clock: Clock) -> None:
    later, marker = threading.Event(), threading.Event()
    scheduler.call_later(60, later.set)
    scheduler.call_later(0, marker.set)  # the thread has looked at the heap at least once
    assert marker.wait(WAIT)
    assert not later.is_set()
    clock.now += 61
    scheduler.call_later(0, lambda: None)  # wakes the thread, which finds the first one due
    assert later.wait(WAIT)


def test_every_repeats_until_cancelled(scheduler: Scheduler, clock: Clock) -> None:
    runs: list[float] = []
    third = threading.Event()

    def tick() -> None:
        runs.append(clock.now)
        clock.now += 1  # each run makes the next one due
        if len(runs) == 3:
            third.set()

    timer = scheduler.call_later(0, tick, every=1)
    assert third.wait(WAIT)
    timer.cancel(wait=True)
    count = len(runs)
    clock.now += 5
    flushed = threading.Event()
    scheduler.call_later(0, flushed.set)
    assert flushed.wait(WAIT)
    assert len(runs) == count  # nothing after the cancel returned


def test_cancel_with_wait_waits_for_the_run_under_way(scheduler: Scheduler) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        assert release.wait(WAIT)
        finished.set()

    timer = scheduler.call_later(0, slow)
    assert started.wait(WAIT)
    returned = threading.Event()

    def cancel() -> None:
        timer.cancel(wait=True)
        returned.set()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    assert not returned.wait(0.05)  # still blocked: the run has not ended
    release.set()
    assert returned.wait(WAIT)
    assert finished.is_set()  # cancel returned only after the run ended
    canceller.join(WAIT)


def test_a_cancelled_call_never_runs(scheduler: Scheduler, clock: Clock) -> None:
    ran = threading.Event()
    timer = scheduler.call_later(5, ran.set)
    timer.cancel()
    clock.now += 10
    flushed = threading.Event()
    scheduler.call_later(0, flushed.set)
    assert flushed.wait(WAIT)
    assert not ran.is_set()


def test_a_failing_step_is_logged_and_the_next_still_runs(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("cache down")

    after = threading.Event()
    scheduler.call_later(0, broken)
    scheduler.call_later(0, after.set)
    assert after.wait(WAIT)
    assert "A deferred step of powercrud_async failed" in caplog.text
