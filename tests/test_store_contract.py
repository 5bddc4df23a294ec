"""One contract, two stores: every ``TaskStore`` rule, run on the database store and on a real Redis.

The database store is the reference; the Redis store must behave the same way in every case here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import ConflictError, InvalidTaskName, LockStoreUnavailable
from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.stores import TaskInfo, TaskStore, get_store
from powercrud_async.stores.database import DatabaseTaskStore
from powercrud_async.stores.redis import RedisTaskStore
from tests.services import RedisServer, free_port

pytestmark = pytest.mark.django_db

STORES = ["database", pytest.param("redis", marks=pytest.mark.redis)]

P = "testapp.project"
T = "testapp.tag"


def k(pk: Any, label: str = P) -> tuple[str, str]:
    return (label, str(pk))


@contextmanager
def configured_store(
    kind: str, server: RedisServer | None = None, **extra: Any
) -> Iterator[TaskStore]:
    """Settings that select ``kind`` for ``get_store()``; Redis starts from an empty database."""
    options = dict(settings.POWERCRUD_SETTINGS)
    if kind == "redis":
        assert server is not None
        redis.Redis.from_url(server.url).flushdb()
        options.update(LOCK_STORE="redis", REDIS_URL=server.url)
    options.update(extra)
    with override_settings(POWERCRUD_SETTINGS=options):
        get_store.cache_clear()
        try:
            yield get_store()
        finally:
            get_store.cache_clear()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[TaskStore]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    with configured_store(request.param, server) as configured:
        expected = RedisTaskStore if request.param == "redis" else DatabaseTaskStore
        assert type(configured) is expected
        yield configured
    if request.param == "redis":
        # The Redis store must not have written to the database tables.
        assert not TaskLock.objects.exists() and not LiveTask.objects.exists()


def info(name: str, status: str = "pending", **values: Any) -> TaskInfo:
    return TaskInfo(task_name=name, status=status, **values)


def held(store: TaskStore) -> dict[tuple[str, str], str]:
    return {(lock.model_label, lock.object_pk): lock.task_name for lock in store.locks()}


# -- acquire ---------------------------------------------------------------------------------------
def test_acquire_locks_and_reports_holders(store: TaskStore) -> None:
    assert store.acquire("a", [k(2), k(1), k("x", T)], 60) == {}
    assert store.holders([k(1), k(2), k(3), k("x", T)]) == {k(1): "a", k(2): "a", k("x", T): "a"}
    assert held(store) == {k(1): "a", k(2): "a", k("x", T): "a"}
    assert store.lock_owners() == {"a"}


def test_acquire_nothing_is_a_no_op(store: TaskStore) -> None:
    assert store.acquire("a", [], 60) == {}
    assert store.locks() == [] and store.lock_owners() == set()


def test_all_or_nothing(store: TaskStore) -> None:
    assert store.acquire("a", [k(1), k(2)], 60) == {}
    assert store.acquire("c", [k(5)], 60) == {}
    assert store.acquire("b", [k(2), k(3), k(4), k(5)], 60) == {k(2): "a", k(5): "c"}
    assert store.holders([k(3), k(4)]) == {}
    assert store.locks(task_name="b") == []
    assert store.lock_owners() == {"a", "c"}


def test_duplicate_keys_are_one_lock(store: TaskStore) -> None:
    assert store.acquire("a", [k(1), k(1), k(1)], 60) == {}
    assert len(store.locks()) == 1
    assert store.release("a") == 1


def test_reentrant(store: TaskStore) -> None:
    assert store.acquire("a", [k(1), k(2)], 60) == {}
    assert store.acquire("a", [k(2), k(3)], 60) == {}
    assert held(store) == {k(1): "a", k(2): "a", k(3): "a"}
    assert store.release("a") == 3


def test_adopt_takes_over_listed_owners_only(store: TaskStore) -> None:
    assert store.acquire("reservation", [k(1), k(2)], 60) == {}
    assert store.acquire("other", [k(9)], 60) == {}
    assert store.acquire("job", [k(2), k(3), k(9)], 60, adopt={"reservation"}) == {k(9): "other"}
    assert held(store) == {k(1): "reservation", k(2): "reservation", k(9): "other"}
    assert store.acquire("job", [k(2), k(3)], 60, adopt={"reservation", "nobody"}) == {}
    assert held(store) == {k(1): "reservation", k(2): "job", k(3): "job", k(9): "other"}
    assert [lock.object_pk for lock in store.locks(task_name="reservation")] == ["1"]
    assert store.release("reservation") == 1
    assert store.release("job") == 2


def test_adopting_every_lock_drops_the_old_owner(store: TaskStore) -> None:
    assert store.acquire("reservation", [k(1)], 60) == {}
    assert store.acquire("job", [k(1)], 60, adopt=["reservation"]) == {}
    assert store.lock_owners() == {"job"}
    assert store.release("reservation") == 0


def test_expired_lock_of_dead_owner_is_reclaimed(store: TaskStore) -> None:
    assert store.acquire("old", [k(1), k(2)], 0) == {}  # expires at once; "old" is not registered
    assert store.holders([k(1), k(2)]) == {}  # expired and no active owner: nobody holds it
    assert store.acquire("new", [k(1)], 60) == {}
    assert held(store) == {k(1): "new", k(2): "old"}
    assert store.holders([k(1)]) == {k(1): "new"}


def test_expired_lock_of_finished_owner_is_reclaimed(store: TaskStore) -> None:
    store.register(info("old", "success"))
    assert store.acquire("old", [k(1)], 0) == {}
    assert store.acquire("new", [k(1)], 60) == {}
    assert held(store) == {k(1): "new"}
    assert store.lock_owners() == {"new"}


@pytest.mark.parametrize("status", ["pending", "in_progress"])
def test_expired_lock_of_active_owner_is_kept(store: TaskStore, status: str) -> None:
    store.register(info("live", status))
    assert store.acquire("live", [k(1)], 0) == {}
    assert store.acquire("new", [k(1), k(2)], 60) == {k(1): "live"}
    assert store.holders([k(1), k(2)]) == {k(1): "live"}
    assert held(store) == {k(1): "live"}


def test_unexpired_lock_of_unregistered_owner_is_kept(store: TaskStore) -> None:
    assert store.acquire("reservation", [k(1)], 60) == {}
    assert store.acquire("new", [k(1)], 60) == {k(1): "reservation"}


def test_register_in_the_same_step(store: TaskStore) -> None:
    created = timezone.now() - timedelta(seconds=5)
    assert (
        store.acquire("job", [k(1)], 60, register=info("job", created_at=created, func_path="f"))
        == {}
    )
    row = store.get("job")
    assert row is not None
    assert (row.status, row.func_path, row.created_at) == ("pending", "f", created)
    assert [task.task_name for task in store.active()] == ["job"]
    assert held(store) == {k(1): "job"}


def test_register_without_keys(store: TaskStore) -> None:
    assert store.acquire("job", [], 60, register=info("job")) == {}
    assert store.get("job") is not None
    assert store.locks() == []


def test_duplicate_registration_locks_nothing(store: TaskStore) -> None:
    store.register(info("job", reason="first"))
    with pytest.raises(InvalidTaskName, match="already exists"):
        store.acquire("job", [k(1), k(2)], 60, register=info("job", reason="second"))
    assert store.locks() == [] and store.holders([k(1), k(2)]) == {}
    row = store.get("job")
    assert row is not None and row.reason == "first"


def test_conflict_registers_nothing(store: TaskStore) -> None:
    assert store.acquire("a", [k(1)], 60) == {}
    assert store.acquire("b", [k(1), k(2)], 60, register=info("b")) == {k(1): "a"}
    assert store.get("b") is None
    assert store.active() == []
    assert held(store) == {k(1): "a"}


def test_register_twice_is_refused(store: TaskStore) -> None:
    store.register(info("job"))
    with pytest.raises(InvalidTaskName):
        store.register(info("job", status="success"))
    row = store.get("job")
    assert row is not None and row.status == "pending"


# -- release, renew, locks, lock_owners -------------------------------------------------------------
def test_release(store: TaskStore) -> None:
    store.acquire("a", [k(1), k(2), k("s", T)], 60)
    store.acquire("b", [k(3)], 60)
    assert store.release("a") == 3
    assert store.release("a") == 0
    assert store.release("nobody") == 0
    assert held(store) == {k(3): "b"}
    assert store.lock_owners() == {"b"}
    assert store.acquire("c", [k(1), k(2)], 60) == {}


def test_release_expired_frees_only_an_inactive_owner_s_expired_locks(store: TaskStore) -> None:
    store.acquire("resv", [k(1), k(2)], 0)  # a reservation whose time is up
    store.acquire("fresh", [k(3)], 3600)
    store.register(info("job", "in_progress"))
    store.acquire("job", [k(4)], 0)  # expired, but its owner is running
    store.register(info("done", "success"))
    store.acquire("done", [k(5)], 0)
    assert store.release_expired("fresh") == 0
    assert store.release_expired("job") == 0
    assert store.release_expired("resv") == 2
    assert store.release_expired("done") == 1
    assert store.release_expired("nobody") == 0
    assert held(store) == {k(3): "fresh", k(4): "job"}
    assert store.lock_owners() == {"fresh", "job"}


def test_renew_pushes_expiry(store: TaskStore) -> None:
    store.acquire("a", [k(1), k(2)], 0)
    store.acquire("b", [k(3)], 0)
    before = {lock.object_pk: lock.expires_at for lock in store.locks()}
    assert store.renew("a", 600) == 2
    assert store.renew("nobody", 600) == 0
    after = {lock.object_pk: lock.expires_at for lock in store.locks()}
    assert after["1"] - before["1"] >= timedelta(seconds=599)
    assert after["3"] == before["3"]
    # Renewed locks are live again; the unrenewed one is still reclaimable.
    assert store.acquire("new", [k(1)], 60) == {k(1): "a"}
    assert store.acquire("new", [k(3)], 60) == {}


def test_lock_rows_and_filters(store: TaskStore) -> None:
    start = timezone.now() - timedelta(seconds=1)
    store.acquire("a", [k(1), k(2), k("x", T)], 120)
    store.acquire("b", [k(3), k("y", T)], 120)
    rows = store.locks()
    assert len(rows) == 5
    for row in rows:
        assert start <= row.acquired_at <= timezone.now()
        assert abs((row.expires_at - row.acquired_at) - timedelta(seconds=120)) < timedelta(
            seconds=1
        )
    assert {(r.model_label, r.object_pk) for r in store.locks(task_name="a")} == {
        k(1),
        k(2),
        k("x", T),
    }
    assert {r.object_pk for r in store.locks(model_label=T)} == {"x", "y"}
    assert [r.task_name for r in store.locks(model_label=P, object_pk="3")] == ["b"]
    assert [r.object_pk for r in store.locks(task_name="b", model_label=T)] == ["y"]
    assert store.locks(task_name="a", object_pk="3") == []
    assert store.locks(task_name="nobody") == []
    assert store.locks(model_label="testapp.nothing") == []
    assert [r.object_pk for r in store.locks(task_name="a", model_label=P)] == ["1", "2"]  # ordered


def test_locks_lists_expired_rows_too(store: TaskStore) -> None:
    store.acquire("old", [k(1)], 0)
    [row] = store.locks()
    assert row.expires_at <= timezone.now()
    assert store.lock_owners() == {"old"}


def test_lock_counts_total_what_locks_lists(store: TaskStore) -> None:
    assert store.lock_counts() == (0, 0)
    store.acquire("a", [k(1), k(2), k("x", T)], 60)
    store.acquire("b", [k(3)], 60)
    store.acquire("old", [k(4)], 0)  # expired, and still listed by locks(): still counted
    assert store.lock_counts() == (5, 3)
    assert store.acquire("b", [k(2)], 60, adopt={"a"}) == {}  # a lock changing owner is one lock
    assert store.lock_counts() == (5, 3)
    assert store.release("a") == 2
    assert store.lock_counts() == (3, 2)
    assert store.acquire("c", [k(4)], 60) == {}  # reclaimed from "old": its owner is gone
    assert store.lock_counts() == (3, 2)
    assert store.lock_owners() == {"b", "c"}
    rows = store.locks()
    assert store.lock_counts() == (len(rows), len({row.task_name for row in rows}))
    store.release("b")
    store.release("c")
    assert store.lock_counts() == (0, 0)


def test_odd_names_and_pks_round_trip(store: TaskStore) -> None:
    name = "task|with:odd ✓ chars"
    keys = [k("a:b|c", T), k("ünïcode", T), k(" spaced ", T)]
    assert store.acquire(name, keys, 60) == {}
    assert store.holders(keys) == {key: name for key in keys}
    assert store.acquire("other", keys, 60) == {key: name for key in keys}
    assert store.lock_owners() == {name}
    assert store.lock_counts() == (3, 1)
    assert store.release(name) == 3


# -- registry ---------------------------------------------------------------------------------------
def test_register_get_round_trip(store: TaskStore) -> None:
    now = timezone.now().replace(microsecond=123456)
    full = TaskInfo(
        task_name="full",
        status="in_progress",
        func_path="tests.testapp.tasks.add",
        call=b"\x80\x05binary\x00\xff",
        manager_class="powercrud_async.async_manager.AsyncManager",
        manager_config={"a": [1, 2], "nested": {"x": None}},
        user_id="42",
        conflict_ids={P: ["1", "2"]},
        group="g",
        created_at=now,
        started_at=now + timedelta(seconds=1),
        heartbeat_at=now + timedelta(seconds=2),
        finished_at=None,
        cancel_requested=True,
        attempts=3,
        reason="why",
        retry_of="earlier",
        label="Reprice 6 books",
    )
    store.register(full)
    assert store.get("full") == full
    assert store.get("missing") is None
    store.register(info("bare"))
    bare = store.get("bare")
    assert bare is not None
    assert (bare.call, bare.user_id, bare.manager_config, bare.conflict_ids) == (
        None,
        None,
        None,
        {},
    )
    assert bare.created_at is not None and abs(bare.created_at - timezone.now()) < timedelta(
        seconds=5
    )
    assert store.get_many(["full", "bare", "missing"]) == {"full": full, "bare": bare}
    assert store.get_many([]) == {}


def test_transition_is_compare_and_set(store: TaskStore) -> None:
    store.register(info("job"))
    started = timezone.now()
    assert store.transition("job", ["pending"], "in_progress", started_at=started, attempts=1)
    assert not store.transition("job", ["pending"], "in_progress", attempts=2)
    row = store.get("job")
    assert row is not None and (row.status, row.started_at, row.attempts) == (
        "in_progress",
        started,
        1,
    )
    assert not store.transition("job", [], "success")
    assert not store.transition("missing", ["pending"], "in_progress")
    assert store.get("missing") is None
    finished = timezone.now()
    assert store.transition(
        "job", ["pending", "in_progress"], "failed", finished_at=finished, reason="x"
    )
    row = store.get("job")
    assert row is not None and (row.status, row.finished_at, row.reason) == (
        "failed",
        finished,
        "x",
    )
    with pytest.raises(ValueError, match="func_path"):
        store.transition("job", ["failed"], "pending", func_path="other")


def test_update(store: TaskStore) -> None:
    store.register(info("job"))
    assert store.update("job", events_due=True, cancel_requested=True)
    assert not store.update("job", only_statuses=["in_progress"], reason="not now")
    assert store.update("job", only_statuses=["pending", "in_progress"], attempts=4)
    row = store.get("job")
    assert row is not None
    assert (row.events_due, row.cancel_requested, row.reason, row.attempts, row.status) == (
        True,
        True,
        "",
        4,
        "pending",
    )
    assert not store.update("missing", reason="x")
    assert not store.update("job")  # nothing to change
    with pytest.raises(ValueError, match="transition"):
        store.update("job", status="success")
    with pytest.raises(ValueError, match="func_path"):
        store.update("job", func_path="other")


def test_active_lists_queued_and_running_in_creation_order(store: TaskStore) -> None:
    base = timezone.now() - timedelta(minutes=5)
    store.register(info("second", "in_progress", created_at=base + timedelta(seconds=2)))
    store.register(info("first", "pending", created_at=base))
    store.register(info("done", "success", created_at=base + timedelta(seconds=1)))
    store.register(info("third", "pending", created_at=base + timedelta(seconds=3)))
    assert [t.task_name for t in store.active()] == ["first", "second", "third"]
    store.transition("second", ["in_progress"], "cancelled", finished_at=timezone.now())
    store.transition("done", ["success"], "pending")  # back to active: the index follows
    assert [t.task_name for t in store.active()] == ["first", "done", "third"]
    assert all(t.is_active for t in store.active())


def test_finished_before(store: TaskStore) -> None:
    now = timezone.now()
    old = now - timedelta(hours=2)
    store.register(
        info("old-done", "success", created_at=old, finished_at=old + timedelta(minutes=1))
    )
    store.register(info("new-done", "failed", created_at=old, finished_at=now))
    store.register(info("old-no-finish", "cancelled", created_at=old))
    store.register(info("old-active", "in_progress", created_at=old))
    cutoff = now - timedelta(hours=1)
    assert sorted(store.finished_before(cutoff)) == ["old-done", "old-no-finish"]
    assert store.finished_before(old + timedelta(minutes=1)) == ["old-no-finish"]  # strictly before
    assert sorted(store.finished_before(now + timedelta(seconds=1))) == [
        "new-done",
        "old-done",
        "old-no-finish",
    ]
    # A task finishing now leaves the active list and joins the finished ones.
    assert store.transition("old-active", ["in_progress"], "failed", finished_at=old)
    assert "old-active" in store.finished_before(cutoff)
    # An update of finished_at moves it.
    assert store.update("old-done", finished_at=now)
    assert "old-done" not in store.finished_before(cutoff)


def test_undelivered_lists_ended_tasks_whose_events_are_due(store: TaskStore) -> None:
    now = timezone.now()
    old = now - timedelta(hours=1)
    store.register(info("running", "in_progress", created_at=old))
    store.register(info("reported", "success", created_at=old, finished_at=old))
    store.register(info("fresh", "in_progress", created_at=old))
    assert store.undelivered(now) == []
    # Ending marks the events due in the same step; finished after the bound: not yet listed.
    assert store.finish("running", ["in_progress"], "failed", finished_at=old, events_due=True) == 0
    assert store.finish("fresh", ["in_progress"], "success", finished_at=now, events_due=True) == 0
    assert [i.task_name for i in store.undelivered(now)] == ["running"]
    assert store.undelivered(now)[0].events_due is True
    # Only the caller that still sees them due marks them delivered.
    assert store.update("running", expect={"events_due": True}, events_due=False)
    assert not store.update("running", expect={"events_due": True}, events_due=False)
    assert [i.task_name for i in store.undelivered(now + timedelta(seconds=1))] == ["fresh"]
    assert store.delete("fresh")
    assert store.undelivered(now + timedelta(seconds=1)) == []


def test_mark_delivered_clears_only_marked_tasks_in_one_call(store: TaskStore) -> None:
    now = timezone.now()
    for name in ("a", "b", "quiet", "live"):
        store.register(info(name, "in_progress"))
    for name in ("a", "b"):
        assert store.finish(name, ["in_progress"], "success", finished_at=now, events_due=True) == 0
    assert store.finish("quiet", ["in_progress"], "failed", finished_at=now) == 0
    later = now + timedelta(seconds=1)
    assert sorted(i.task_name for i in store.undelivered(later)) == ["a", "b"]
    # Unmarked, running, unknown and impossible names are counted out and left alone.
    assert store.mark_delivered(["a", "b", "quiet", "live", "missing", ""]) == 2
    assert store.undelivered(later) == []
    assert store.mark_delivered(["a", "b"]) == 0  # a second caller finds nothing to clear
    assert store.mark_delivered([]) == 0
    live = store.get("live")
    assert live is not None and (live.status, live.events_due) == ("in_progress", False)


def test_delete(store: TaskStore) -> None:
    store.register(info("job", created_at=timezone.now() - timedelta(days=1)))
    store.acquire("job", [k(1)], 60)
    store.register(info("done", "success", created_at=timezone.now() - timedelta(days=1)))
    assert store.delete("job")
    assert not store.delete("job")
    assert store.delete("done")
    assert store.get("job") is None and store.get("done") is None
    assert store.active() == []
    assert store.finished_before(timezone.now()) == []
    assert held(store) == {k(1): "job"}  # delete touches the registry only
    store.register(info("job"))  # the name is free again
    assert store.get("job") is not None


def test_expected_fields_make_every_write_a_compare_and_set(store: TaskStore) -> None:
    """``expect``: the row changes only while those fields hold the values the caller read."""
    beat = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt_timezone.utc)
    store.register(info("job"))
    assert not store.transition(
        "job", ["pending"], "in_progress", expect={"attempts": 1}, attempts=1
    )
    assert store.transition(
        "job",
        ["pending"],
        "in_progress",
        expect={"attempts": 0, "heartbeat_at": None},
        attempts=1,
        heartbeat_at=beat,
    )
    assert not store.update("job", expect={"attempts": 0}, cancel_requested=True)
    assert not store.update(
        "job", expect={"heartbeat_at": beat + timedelta(seconds=1)}, cancel_requested=True
    )
    assert store.update(
        "job",
        only_statuses=["in_progress"],
        expect={"attempts": 1, "heartbeat_at": beat},
        reason="seen",
    )
    assert store.acquire("job", [k(1)], 60) == {}
    assert store.finish("job", ["in_progress"], "failed", expect={"attempts": 2}) is None
    assert store.locks(task_name="job") != []
    assert (
        store.finish(
            "job", ["in_progress"], "failed", expect={"status": "in_progress", "attempts": 1}
        )
        == 1
    )
    row = store.get("job")
    assert (
        row is not None
        and row.status == "failed"
        and row.reason == "seen"
        and not row.cancel_requested
    )
    with pytest.raises(ValueError):
        store.update("job", expect={"func_path": "x"}, reason="no")


def test_beat_is_fenced_by_the_attempt(store: TaskStore) -> None:
    store.register(info("job", status="in_progress", attempts=2))
    assert store.acquire("job", [k(1)], 1) == {}
    now = timezone.now()
    assert not store.beat("job", 1, 600, now)  # a superseded attempt: nothing changes
    (lock,) = store.locks()
    assert lock.expires_at < now + timedelta(seconds=300)
    assert store.beat("job", 2, 600, now)
    row = store.get("job")
    assert row is not None and row.heartbeat_at == now
    (lock,) = store.locks()
    assert lock.expires_at > now + timedelta(seconds=300)
    assert store.transition("job", ["in_progress"], "success")
    assert not store.beat("job", 2, 600, now)  # an ended task beats no more


def test_reentrant_acquire_renews(store: TaskStore) -> None:
    assert store.acquire("a", [k(1)], 0) == {}
    assert store.acquire("a", [k(1), k(2)], 600) == {}
    assert all(lock.expires_at > timezone.now() + timedelta(seconds=300) for lock in store.locks())
    assert store.acquire("b", [k(1)], 60) == {k(1): "a"}


# -- the AsyncManager on each store ------------------------------------------------------------------
def test_manager_add_and_check_conflicts(store: TaskStore) -> None:
    manager = AsyncManager()
    doc = uuid.uuid4()
    assert manager.add_conflict_ids("a", {"testapp.Project": {1, 2}, "testapp.Document": [doc]})
    assert not manager.add_conflict_ids("b", {"testapp.Project": ["2", 3]})
    assert not manager.add_conflict_ids("b", {"testapp.Document": [str(doc).upper()]})
    assert manager.check_conflict({"testapp.Project": {1, 3}}) == {1}
    assert manager.check_conflict({"testapp.Project": {1, 3}}, task_name="a") == set()
    assert manager.get_conflict_holders({"testapp.Document": [doc]}) == {
        "testapp.document": {str(doc): "a"}
    }
    assert manager.remove_conflict_ids("a") == 3
    assert manager.check_conflict({"testapp.Project": {1, 2}}) == set()


def test_manager_launch_conflict(store: TaskStore) -> None:
    manager = AsyncManager()
    key = manager.launch_async_task(
        "tests.testapp.tasks.noop", conflict_ids={"testapp.Tag": ["news", "x"]}
    )
    assert store.get(key) is not None and store.get(key).status == "pending"  # type: ignore[union-attr]
    assert store.holders([k("news", T), k("x", T)]) == {k("news", T): key, k("x", T): key}
    with pytest.raises(ConflictError) as exc:
        manager.launch_async_task(
            "tests.testapp.tasks.noop", conflict_ids={"testapp.Tag": ["x", "y"]}, task_key="loser"
        )
    assert exc.value.conflicts == {T: {"x": key}}
    assert store.get("loser") is None
    assert store.holders([k("y", T)]) == {}
    assert manager.get_active_tasks() == {key}


def test_manager_launch_adopts_own_reservation(store: TaskStore) -> None:
    manager = AsyncManager()
    assert manager.add_conflict_ids("custom-task", {"testapp.Project": [1, 2]})
    key = manager.launch_async_task(
        "tests.testapp.tasks.noop", conflict_ids={"testapp.Project": [1, 2]}
    )
    assert store.holders([k(1), k(2)]) == {k(1): key, k(2): key}
    assert store.lock_owners() == {key}


# -- a store that is down is never a conflict ----------------------------------------------------------
def test_unreachable_redis_raises_after_bounded_retries(redis_server: RedisServer) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    options = {
        **settings.POWERCRUD_SETTINGS,
        "LOCK_STORE": "redis",
        "REDIS_URL": closed,
        "STORE_RETRIES": 2,
    }
    with override_settings(POWERCRUD_SETTINGS=options):
        get_store.cache_clear()
        store = get_store()
        assert isinstance(store, RedisTaskStore)
        calls: list[tuple[Any, ...]] = []
        original = store.client.execute_command

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return original(*args, **kwargs)

        store.client.execute_command = counting  # type: ignore[method-assign]
        with pytest.raises(LockStoreUnavailable, match="failed 3 times"):
            store.acquire("a", [k(1)], 60)
        assert len(calls) == 3  # STORE_RETRIES + 1 attempts, each one EVALSHA
        for operation in (
            lambda: store.holders([k(1)]),
            lambda: store.release("a"),
            lambda: store.get("a"),
            lambda: store.transition("a", ["pending"], "success"),
            lambda: store.active(),
            lambda: store.lock_owners(),
        ):
            with pytest.raises(LockStoreUnavailable):
                operation()
        manager = AsyncManager()
        with pytest.raises(LockStoreUnavailable):
            manager.add_conflict_ids("a", {"testapp.Project": [1]})
        with pytest.raises(LockStoreUnavailable):
            manager.check_conflict({"testapp.Project": [1]})
        with pytest.raises(LockStoreUnavailable):
            manager.launch_async_task(
                "tests.testapp.tasks.noop", conflict_ids={"testapp.Project": [1]}
            )
    get_store.cache_clear()


def test_redis_store_needs_a_url() -> None:
    from django.core.exceptions import ImproperlyConfigured

    options = {**settings.POWERCRUD_SETTINGS, "LOCK_STORE": "redis", "REDIS_URL": None}
    with (
        override_settings(POWERCRUD_SETTINGS=options),
        pytest.raises(ImproperlyConfigured, match="REDIS_URL"),
    ):
        get_store()


def test_timestamps_are_timezone_aware(store: TaskStore) -> None:
    store.acquire("a", [k(1)], 60)
    [row] = store.locks()
    assert row.acquired_at.tzinfo is not None
    assert row.acquired_at.utcoffset() == timedelta(0) or row.acquired_at.tzinfo == dt_timezone.utc
    assert isinstance(row.expires_at, datetime)
