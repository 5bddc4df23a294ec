"""What only the Redis store promises: O(1) round trips, no key TTLs, prefixes, safe retries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from powercrud_async.exceptions import LockStoreUnavailable
from powercrud_async.stores import TaskInfo
from powercrud_async.stores.redis import RedisTaskStore
from tests.services import RedisServer

pytestmark = pytest.mark.redis

P = "testapp.project"


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_server.url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def store(redis_server: RedisServer, client: redis.Redis) -> RedisTaskStore:
    return RedisTaskStore(redis_server.url)


class Counter:
    """Counts commands sent through a client (each one is a round trip)."""

    def __init__(self, conn: redis.Redis):
        self.commands: list[str] = []
        original = conn.execute_command

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.commands.append(str(args[0]))
            return original(*args, **kwargs)

        conn.execute_command = counting  # type: ignore[method-assign]


def keys(n: int, start: int = 0) -> list[tuple[str, str]]:
    return [(P, str(i)) for i in range(start, start + n)]


def test_locking_ten_thousand_objects_is_one_round_trip(store: RedisTaskStore) -> None:
    # Each script is loaded into the server on first use (NOSCRIPT, SCRIPT LOAD); warm them up.
    store.acquire("warm-up", keys(1, 10**6), 60)
    store.holders(keys(1))
    store.renew("warm-up", 60)
    store.release("warm-up")
    counter = Counter(store.client)
    assert store.acquire("big", keys(10_000), 60) == {}
    assert counter.commands == ["EVALSHA"]
    conflicts = store.acquire("other", keys(10_000, 5_000), 60)
    assert len(conflicts) == 5_000 and set(conflicts.values()) == {"big"}
    assert len(store.holders(keys(10_000, 5_000))) == 5_000
    assert store.renew("big", 60) == 10_000
    assert store.release("big") == 10_000
    assert counter.commands == ["EVALSHA"] * 5
    assert store.acquire("other", keys(10_000, 5_000), 60) == {}


def test_keys_never_expire_by_ttl(store: RedisTaskStore, client: redis.Redis) -> None:
    store.register(TaskInfo(task_name="live", status="in_progress"))
    store.acquire("live", keys(3), 0.001)
    store.register(TaskInfo(task_name="done", status="success"))
    names = client.keys("pca:*")
    assert {n.decode() for n in names} == {
        "pca:locks",
        "pca:owners",
        "pca:owned:live",
        "pca:task:live",
        "pca:task:done",
        "pca:active",
        "pca:finished",
    }
    assert all(client.ttl(name) == -1 for name in names)
    # Long expired, yet held: its owner is running.
    assert store.acquire("new", keys(1), 60) == {(P, "0"): "live"}


def test_prefixes_isolate_stores(redis_server: RedisServer, client: redis.Redis) -> None:
    one = RedisTaskStore(client, prefix="one:")
    two = RedisTaskStore(redis_server.url, prefix="two:")
    assert one.acquire("a", keys(2), 60, register=TaskInfo(task_name="a")) == {}
    assert two.acquire("b", keys(2), 60, register=TaskInfo(task_name="a")) == {}
    assert one.holders(keys(2)) == {(P, "0"): "a", (P, "1"): "a"}
    assert two.holders(keys(2)) == {(P, "0"): "b", (P, "1"): "b"}
    assert all(name.startswith((b"one:", b"two:")) for name in client.keys("*"))


def test_retried_registration_is_not_a_duplicate(store: RedisTaskStore) -> None:
    """A lost reply makes ``retrying`` send the same call again; it must not refuse itself."""
    info = TaskInfo(task_name="job")
    pairs = [item for pair in store._row(info) for item in pair]
    token = uuid.uuid4().hex
    args = [store.prefix, "job", 60_000, token, "job", 0, len(pairs), *pairs, "0", 0, f"{P}:1"]
    script_keys = [
        store.locks_key,
        store.owners_key,
        store.active_key,
        store.finished_key,
        "pca:task:job",
    ]
    assert store.scripts["acquire"](keys=script_keys, args=args) == [b"ok"]
    assert store.scripts["acquire"](keys=script_keys, args=args) == [b"ok"]  # the retry
    other = [*args[:3], uuid.uuid4().hex, *args[4:]]
    assert store.scripts["acquire"](keys=script_keys, args=other) == [b"dup"]  # a different call
    assert store.holders([(P, "1")]) == {(P, "1"): "job"}


def test_client_decoding_responses_works(redis_server: RedisServer, client: redis.Redis) -> None:
    store = RedisTaskStore(redis.Redis.from_url(redis_server.url, decode_responses=True))
    store.acquire("a", keys(2), 60, register=TaskInfo(task_name="a", call=b"\x00\xff"))
    assert store.holders(keys(3)) == {(P, "0"): "a", (P, "1"): "a"}
    assert store.get("a").call == b"\x00\xff"  # type: ignore[union-attr]
    assert [t.task_name for t in store.active()] == ["a"]
    assert store.lock_owners() == {"a"}
    assert [lock.object_pk for lock in store.locks(task_name="a")] == ["0", "1"]


def test_dropped_connection_is_recovered(store: RedisTaskStore, client: redis.Redis) -> None:
    assert store.acquire("a", keys(1), 60) == {}
    client.client_kill_filter(_type="normal", skipme=True)  # drop the store's pooled connection
    assert store.holders(keys(1)) == {(P, "0"): "a"}


def test_server_gone_is_unavailable_not_conflict(settings: Any) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "STORE_RETRIES": 1}
    server = RedisServer()
    store = RedisTaskStore(server.url)
    assert store.acquire("a", keys(1), 60) == {}
    server.stop()
    with pytest.raises(LockStoreUnavailable, match="failed 2 times"):
        store.acquire("b", keys(1), 60)
    with pytest.raises(LockStoreUnavailable):
        store.holders(keys(1))


def test_full_server_is_unavailable_and_nothing_half_done(
    store: RedisTaskStore, client: redis.Redis, settings: Any
) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "STORE_RETRIES": 1}
    assert store.acquire("a", keys(1), 60) == {}
    policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", client.info("memory")["used_memory"] - 1000)
    try:
        with pytest.raises(LockStoreUnavailable, match="OutOfMemoryError"):
            store.acquire("b", keys(50, 1), 60, register=TaskInfo(task_name="b"))
        assert client.hlen("pca:locks") == 1 and not client.exists("pca:task:b")
        assert store.holders(keys(51)) == {(P, "0"): "a"}  # reads still work
        assert store.release("a") == 1  # and so does freeing memory
    finally:
        client.config_set("maxmemory", 0)
        client.config_set("maxmemory-policy", policy)
    assert store.acquire("b", keys(50, 1), 60, register=TaskInfo(task_name="b")) == {}


def test_retried_transition_reports_its_own_success(store: RedisTaskStore) -> None:
    """A transition whose reply was lost, sent again, must not look like a lost race."""
    store.register(TaskInfo(task_name="job"))
    token = uuid.uuid4().hex
    args = ["job", "1", token, 1, '"pending"', 0, "status", '"in_progress"']
    script_keys = ["pca:task:job", store.active_key, store.finished_key]
    assert store.scripts["set_fields"](keys=script_keys, args=args) == 1
    assert store.scripts["set_fields"](keys=script_keys, args=args) == 1  # the retry
    assert (
        store.scripts["set_fields"](
            keys=script_keys, args=[args[0], args[1], uuid.uuid4().hex, *args[3:]]
        )
        == 0
    )
    assert not store.transition("job", ["pending"], "in_progress")  # a genuinely lost race
    assert store.get("job").status == "in_progress"  # type: ignore[union-attr]
