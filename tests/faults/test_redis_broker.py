"""Item: on django-q2's Redis broker a queued job in a cluster's memory is not "lost"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone
from django_q.conf import Conf

from powercrud_async import broker
from powercrud_async.models import LiveTask
from powercrud_async.statuses import TaskStatus
from powercrud_async.stores import get_store
from tests.cluster import wait_until
from tests.services import RedisServer
from tests.testapp.managers import Recording

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WORKERS, QUEUE_LIMIT, TIMEOUT = 1, 4, 30
DB = 3  # a database of its own on the shared test Redis


@pytest.fixture
def broker_url(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> Iterator[str]:
    """This process talks to the Redis broker as the qcluster does (``Conf`` is read once at
    import, so it is patched, not overridden)."""
    url = f"redis://127.0.0.1:{redis_server.port}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    for name, value in {
        "ORM": None,
        "REDIS": url,
        "WORKERS": WORKERS,
        "QUEUE_LIMIT": QUEUE_LIMIT,
        "TIMEOUT": TIMEOUT,
    }.items():
        monkeypatch.setattr(Conf, name, value)
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "HEARTBEAT_INTERVAL": 1}
    yield url
    client.flushdb()


def age(key: str, seconds: float) -> None:
    LiveTask.objects.filter(task_name=key).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_prefetched_jobs_are_kept_and_run(qcluster: Any, broker_url: str) -> None:
    manager = Recording()
    gate = manager.launch_async_task(
        "tests.faults.jobs.wait_on_redis", broker_url, "gate", conflict_ids={"testapp.Project": [0]}
    )
    queued = [
        manager.launch_async_task("tests.faults.jobs.noop", conflict_ids={"testapp.Project": [i]})
        for i in (1, 2, 3)
    ]
    q_broker = broker._broker()
    qcluster(
        PCA_BROKER_REDIS=broker_url,
        PCA_Q_WORKERS=str(WORKERS),
        PCA_Q_LIMIT=str(QUEUE_LIMIT),
        PCA_Q_TIMEOUT=str(TIMEOUT),
        PCA_Q_RETRY=str(TIMEOUT + 10),
        PCA_HEARTBEAT="1",
    )
    wait_until(lambda: get_store().get(gate).status == TaskStatus.IN_PROGRESS, timeout=60)
    wait_until(
        lambda: q_broker.queue_size() == 0, timeout=30
    )  # all popped into the cluster's memory
    for key in queued:
        assert get_store().get(key).status == TaskStatus.PENDING
        age(key, 60)  # past 3 heartbeats, well within what one worker behind 4 jobs may take
    summary = manager.cleanup_completed_tasks()
    assert summary["reclaimed"] == [] and summary["kept"] == 4
    redis.Redis.from_url(broker_url).rpush("gate", "open")
    for key in [gate, *queued]:
        wait_until(lambda key=key: get_store().get(key).status == TaskStatus.SUCCESS, timeout=60)
    assert get_store().locks() == []


def test_queued_job_with_no_live_cluster_is_lost(broker_url: str) -> None:
    manager = Recording()
    key = manager.launch_async_task("tests.faults.jobs.noop", conflict_ids={"testapp.Project": [1]})
    broker._broker().purge_queue()  # popped by a cluster that died with it in memory
    age(key, 10)
    summary = manager.cleanup_completed_tasks()
    assert [item["task_name"] for item in summary["reclaimed"]] == [key]
    assert "no live cluster" in summary["reclaimed"][0]["reason"]
    assert get_store().locks() == []


def test_bound_from_django_q2_settings(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a live cluster, a job out of the broker's sight is lost only after
    ``(ceil(queue_limit / workers) + 1) * timeout`` (+ the 3-heartbeat grace)."""
    monkeypatch.setattr(broker, "live_clusters", lambda: 1)
    monkeypatch.setattr(Conf, "WORKERS", 3)
    assert broker.out_of_sight_bound() == (2 + 1) * TIMEOUT
    manager = Recording()
    key = manager.launch_async_task("tests.faults.jobs.noop")
    broker._broker().purge_queue()
    age(key, 3 + 90 - 1)
    assert manager.cleanup_completed_tasks()["reclaimed"] == []
    age(key, 3 + 90 + 1)
    reclaimed = manager.cleanup_completed_tasks()["reclaimed"]
    assert [item["task_name"] for item in reclaimed] == [key]
    assert "longer than the 90 s" in reclaimed[0]["reason"]
