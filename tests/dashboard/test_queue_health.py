"""Stuck-queue detection is judged from the work, at a ``now`` the test chooses (no waiting)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from powercrud_async.dashboard.liveness import queue_health
from powercrud_async.stores import TaskInfo

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def queued(*ages: float) -> list[TaskInfo]:
    return [
        TaskInfo(task_name=f"q{i}", status="pending", created_at=NOW - timedelta(seconds=age))
        for i, age in enumerate(ages)
    ]


def running() -> TaskInfo:
    return TaskInfo(
        task_name="r",
        status="in_progress",
        created_at=NOW - timedelta(minutes=9),
        started_at=NOW - timedelta(minutes=9),
        heartbeat_at=NOW,
    )


def health(
    active: list[TaskInfo], *, started: int = 0, last: float | None = None, after: float = 120
) -> object:
    return queue_health(
        NOW,
        active,
        started_recently=started,
        window=900,
        last_started=NOW - timedelta(seconds=last) if last is not None else None,
        stuck_after=after,
    )


def test_nothing_waiting_is_idle_even_with_beating_workers() -> None:
    found = health([running()], last=540)
    assert found.state == "idle" and found.waiting == 0


def test_waiting_longer_than_the_limit_with_no_start_is_stuck_while_heartbeats_are_fresh() -> None:
    found = health([running(), running(), *queued(300, 290)], started=6, last=540)
    assert found.state == "stuck"
    assert found.reason == "2 waiting, the oldest for 5 min; no job started for 9 min"


def test_a_recent_start_means_the_queue_moves() -> None:
    assert health(queued(300), started=4, last=30).state == "moving"


def test_young_waiting_jobs_are_not_stuck() -> None:
    assert health(queued(60), last=600).state == "moving"


def test_the_queue_s_own_rhythm_sets_the_limit_once_there_are_enough_starts() -> None:
    # 5 starts in 15 min: one every 3 min, so 8 min 20 s without a start is still within 3 gaps.
    assert health(queued(300), started=5, last=500).state == "moving"
    assert health(queued(300), started=5, last=600).state == "stuck"
    # 2 starts make no rate: the configured limit decides.
    assert health(queued(300), started=2, last=540).state == "stuck"


def test_never_started_says_so() -> None:
    found = health(queued(200))
    assert found.state == "stuck" and found.reason.endswith("no job has started yet")
