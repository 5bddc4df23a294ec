"""Item 1 through a real qcluster on the ORM broker: a worker frozen while it holds a job misses
its heartbeats, django-q2 redelivers the job, a second attempt takes it over and finishes, and
the frozen attempt, once it runs again, stops at its next checkpoint without touching another
item. The redelivery is made due explicitly (the broker row's lock moved past ``retry``) once the
heartbeat is stale, so nothing depends on how fast the machine is."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from powercrud_async.models import TaskEvent, TaskLock
from powercrud_async.stores import get_store
from tests.cluster import wait_until
from tests.testapp.managers import TrackedManager

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ITEMS = 6


def test_a_frozen_worker_s_job_is_taken_over_and_the_frozen_attempt_stops(
    qcluster, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    log, gate = tmp_path / "items.log", tmp_path / "gate"
    key = TrackedManager().launch_async_task(
        "tests.faults.jobs.stalling_items",
        ITEMS,
        str(log),
        str(gate),
        conflict_ids={"testapp.Project": [7]},
    )
    # Heartbeats every 1 s (dead after 3 s); redelivery and timeout far away unless made due.
    qcluster(PCA_Q_RETRY="300", PCA_Q_TIMEOUT="200", PCA_HEARTBEAT="1")
    pid_file = Path(str(gate) + ".pid")
    wait_until(pid_file.exists, timeout=60)
    frozen = int(pid_file.read_text())
    os.kill(frozen, signal.SIGSTOP)
    try:
        gate.touch()  # once it runs again, the frozen attempt goes on from item 2

        def silent() -> bool:
            row = get_store().get(key)
            beat = row.heartbeat_at if row else None
            return beat is not None and timezone.now() - beat > timedelta(seconds=3.5)

        wait_until(silent, timeout=60)
        # The redelivery django-q2 makes after ``retry``: the broker row's lock runs out now.
        row_ids = [q.pk for q in OrmQ.objects.all() if q.name() == key]
        assert OrmQ.objects.filter(pk__in=row_ids).update(
            lock=timezone.now() - timedelta(seconds=1)
        )
        wait_until(
            lambda: (row := get_store().get(key)) is not None and row.status == "success",
            timeout=60,
        )
        row = get_store().get(key)
        assert row is not None and row.attempts == 2
    finally:
        os.kill(frozen, signal.SIGCONT)
    wait_until(
        lambda: TaskEvent.objects.filter(task_name=key, event="superseded").exists(), timeout=60
    )
    lines = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    assert [item for attempt, item in lines if attempt == 2] == list(range(ITEMS))
    assert [item for attempt, item in lines if attempt == 1] == [0, 1]  # nothing after the freeze
    assert get_store().get(key).status == "success"  # the stale attempt changed nothing
    assert not TaskLock.objects.exists()
