"""Random sequences of store operations against a tiny model of who holds what, on both stores.

The model is the specification in ~40 lines: a lock is ``(owner, expired)``; a registry row is a
status. ``ttl=0`` makes a lock that has expired by the next call, so expiry is deterministic.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from powercrud_async.exceptions import InvalidTaskName
from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.stores import TaskInfo, TaskStore
from tests.services import RedisServer
from tests.test_store_contract import configured_store

pytestmark = pytest.mark.django_db

TASKS = ["t0", "t1", "t2", "t3"]
KEYS = [
    ("testapp.project", "1"),
    ("testapp.project", "2"),
    ("testapp.project", "3"),
    ("testapp.tag", "a"),
    ("testapp.tag", "b"),
    ("testapp.document", "x"),
]
ACTIVE = {"pending", "in_progress"}
STATUSES = ["pending", "in_progress", "success", "failed", "cancelled"]

tasks = st.sampled_from(TASKS)
key_sets = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4)
ttls = st.sampled_from([0, 600])
status_sets = st.sets(st.sampled_from(STATUSES), max_size=3)


class StoreMachine(RuleBasedStateMachine):
    store: TaskStore  # set per run

    def __init__(self) -> None:
        super().__init__()
        self.store.release  # noqa: B018 - fail fast if the store is missing
        TaskLock.objects.all().delete()
        LiveTask.objects.all().delete()
        client = getattr(self.store, "client", None)
        if client is not None:
            client.flushdb()
        self.locks: dict[tuple[str, str], tuple[str, bool]] = {}
        self.registry: dict[str, str] = {}

    # -- model helpers -------------------------------------------------------------------------
    def _is_active(self, name: str) -> bool:
        return self.registry.get(name) in ACTIVE

    def _expected_conflicts(
        self, task: str, keys: list[tuple[str, str]], adopt: set[str]
    ) -> dict[Any, str]:
        conflicts = {}
        for key in set(keys):
            if key not in self.locks:
                continue
            owner, expired = self.locks[key]
            if owner == task or owner in adopt:
                continue
            if expired and not self._is_active(owner):
                continue
            conflicts[key] = owner
        return conflicts

    def _take(self, task: str, keys: list[tuple[str, str]], ttl: int) -> None:
        for key in set(keys):
            self.locks[key] = (task, ttl == 0)  # re-entrant: the lock takes the new expiry

    # -- rules ---------------------------------------------------------------------------------
    @rule(task=tasks, keys=key_sets, ttl=ttls, adopt=st.sets(tasks, max_size=2))
    def acquire(self, task: str, keys: list[tuple[str, str]], ttl: int, adopt: set[str]) -> None:
        expected = self._expected_conflicts(task, keys, adopt)
        assert self.store.acquire(task, keys, ttl, adopt=adopt) == expected
        if not expected:
            self._take(task, keys, ttl)

    @rule(task=tasks, keys=st.lists(st.sampled_from(KEYS), max_size=3), ttl=ttls)
    def launch(self, task: str, keys: list[tuple[str, str]], ttl: int) -> None:
        """Acquire with ``register=``: both happen or neither does."""
        if task in self.registry:
            with pytest.raises(InvalidTaskName):
                self.store.acquire(task, keys, ttl, register=TaskInfo(task_name=task))
            return
        expected = self._expected_conflicts(task, keys, set())
        assert self.store.acquire(task, keys, ttl, register=TaskInfo(task_name=task)) == expected
        if not expected:
            self._take(task, keys, ttl)
            self.registry[task] = "pending"

    @rule(task=tasks)
    def release(self, task: str) -> None:
        mine = [key for key, (owner, _) in self.locks.items() if owner == task]
        assert self.store.release(task) == len(mine)
        for key in mine:
            del self.locks[key]

    @rule(task=tasks, ttl=ttls)
    def renew(self, task: str, ttl: int) -> None:
        mine = [key for key, (owner, _) in self.locks.items() if owner == task]
        assert self.store.renew(task, ttl) == len(mine)
        for key in mine:
            self.locks[key] = (task, ttl == 0)

    @rule(task=tasks, status=st.sampled_from(STATUSES))
    def register(self, task: str, status: str) -> None:
        if task in self.registry:
            with pytest.raises(InvalidTaskName):
                self.store.register(TaskInfo(task_name=task, status=status))
        else:
            self.store.register(TaskInfo(task_name=task, status=status))
            self.registry[task] = status

    @rule(task=tasks, from_statuses=status_sets, to=st.sampled_from(STATUSES))
    def transition(self, task: str, from_statuses: set[str], to: str) -> None:
        expected = self.registry.get(task) in from_statuses
        assert self.store.transition(task, from_statuses, to) == expected
        if expected:
            self.registry[task] = to

    @rule(task=tasks, only=status_sets)
    def update(self, task: str, only: set[str]) -> None:
        expected = task in self.registry and (not only or self.registry[task] in only)
        assert self.store.update(task, only_statuses=only, reason=f"{task} updated") == expected

    @rule(task=tasks)
    def delete(self, task: str) -> None:
        assert self.store.delete(task) == (task in self.registry)
        self.registry.pop(task, None)

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def holders_match(self) -> None:
        expected = {
            key: owner
            for key, (owner, expired) in self.locks.items()
            if not expired or self._is_active(owner)
        }
        assert self.store.holders(KEYS) == expected

    @invariant()
    def lock_rows_match(self) -> None:
        rows = {(lock.model_label, lock.object_pk): lock.task_name for lock in self.store.locks()}
        assert rows == {key: owner for key, (owner, _) in self.locks.items()}
        assert self.store.lock_owners() == {owner for owner, _ in self.locks.values()}

    @invariant()
    def registry_matches(self) -> None:
        assert {t.task_name for t in self.store.active()} == {
            name for name, status in self.registry.items() if status in ACTIVE
        }
        rows = self.store.get_many(TASKS)
        assert {name: row.status for name, row in rows.items()} == self.registry


@pytest.mark.parametrize("kind", ["database", pytest.param("redis", marks=pytest.mark.redis)])
def test_store_matches_model(kind: str, request: pytest.FixtureRequest) -> None:
    server: RedisServer | None = (
        request.getfixturevalue("redis_server") if kind == "redis" else None
    )
    with configured_store(kind, server) as store:
        StoreMachine.store = store
        run_state_machine_as_test(
            StoreMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=25,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
