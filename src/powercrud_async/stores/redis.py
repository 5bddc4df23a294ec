"""The production store: locks and the live-task registry in Redis, every write one Lua script.

Why scripts: a script runs atomically on the server, so "check every key, then take them all" is
all-or-nothing across processes and machines, and locking N objects is one round trip however
large N is. Lock expiry is judged on the Redis server's clock (one clock for every machine), and
locks carry their expiry in their value instead of a key TTL: an expired lock still counts as held
while its owner is an active task, exactly as in the database store, so Redis must never delete it
behind our back. Run this store on a Redis with ``maxmemory-policy noeviction`` (or ``volatile-lru``,
which only evicts keys with a TTL, and ours have none; see the production guide): a store that may
evict is a store that may lose locks.

Layout, under a key prefix (default ``pca:``):

``locks``            hash   ``"label:pk"`` -> ``"expires_ms|acquired_ms|owner"``
``owned:<task>``     set    the lock fields ``<task>`` holds, so ``release`` is one call
``owners``           set    task names holding at least one lock
``task:<name>``      hash   one registry row; each TaskInfo field JSON-encoded (``call`` base64),
                            plus ``~cts``/``~fts`` (created/finished epoch seconds) and the
                            ``~tok``/``~ttok`` tokens that make retried calls idempotent
``active``           set    names of pending/in-progress tasks, so ``active()`` is cheap
``finished``         zset   names of terminal tasks scored by finished (else created) time
``finished:due``     set    names of terminal tasks whose final events are still due
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import redis
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import conf
from ..conflicts import LockKey, impossible_name
from ..exceptions import InvalidTaskName
from . import encoding
from .base import LockInfo, LockRequest, RowChange, TaskInfo, TaskStore
from .lua import SCRIPTS, encode_status
from .retry import retrying

T = TypeVar("T")
#: Failures that say "not now" rather than "wrong": retried, then ``LockStoreUnavailable``.
#: A full server (OOM under ``noeviction``) and a demoted primary (READONLY, after a failover)
#: refuse a script before its first write, so nothing is half-done and a retry is safe.
TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)


class RedisTaskStore(TaskStore):
    """``TaskStore`` on one Redis server (or primary); see the module docstring for the layout."""

    def __init__(self, client: redis.Redis | str, prefix: str = "pca:"):
        self.client: redis.Redis = self.connect(client) if isinstance(client, str) else client
        self.prefix = prefix
        self.locks_key = f"{prefix}locks"
        self.owners_key = f"{prefix}owners"
        self.active_key = f"{prefix}active"
        self.finished_key = f"{prefix}finished"
        self.due_key = f"{self.finished_key}:due"
        #: Each script by its file name; redis-py sends it by SHA and loads it once when missing.
        self.scripts = {name: self.client.register_script(text) for name, text in SCRIPTS.items()}

    @staticmethod
    def connect(url: str) -> redis.Redis:
        """A client whose own retries are off, so ``STORE_RETRIES`` is the one bounded policy,
        and whose timeouts are finite, so a hung server becomes ``LockStoreUnavailable``."""
        return redis.Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=5, socket_timeout=30
        )

    @classmethod
    def from_settings(cls) -> RedisTaskStore:
        url = conf.get("REDIS_URL")
        if not url:
            raise ImproperlyConfigured(
                "POWERCRUD_SETTINGS['LOCK_STORE'] is 'redis' but REDIS_URL is not set."
            )
        return cls(url)

    # -- plumbing ----------------------------------------------------------------------------
    def _run(self, operation: str, func: Callable[[], T]) -> T:
        return retrying(operation, func, TRANSIENT)

    def _task_key(self, task_name: str) -> str:
        return f"{self.prefix}task:{task_name}"

    def _owned_key(self, task_name: str) -> str:
        return f"{self.prefix}owned:{task_name}"

    # -- locks -------------------------------------------------------------------------------
    def _lock(self, request: LockRequest) -> dict[LockKey, str]:
        task_name, register, reenter = request.task_name, request.register, request.reenter
        reentered = [] if reenter is None else [encoding.field(key) for key in reenter]
        reg_pairs = encoding.flatten(self._row(register)) if register is not None else []
        reg_name = register.task_name if register is not None else ""
        args: list[Any] = [
            self.prefix,
            task_name,
            int(round(request.ttl * 1000)),
            uuid.uuid4().hex,
            reg_name,
            len(request.adopt),
            *request.adopt,
            len(reg_pairs),
            *reg_pairs,
            "0" if reenter is None else "1",
            len(reentered),
            *reentered,
            *(encoding.field(key) for key in request.keys),
        ]
        script_keys = [
            self.locks_key,
            self.owners_key,
            self.active_key,
            self.finished_key,
            self._task_key(reg_name),
        ]
        reply = self._run(
            f"acquire locks for {task_name}",
            lambda: self.scripts["acquire"](keys=script_keys, args=args),
        )
        outcome = encoding.text(reply[0])
        if outcome == "dup":
            raise InvalidTaskName(
                f"A task named {reg_name!r} already exists; task keys must be unique."
            )
        if outcome == "conflict":
            pairs = reply[1]
            return {
                encoding.key(pairs[i]): encoding.text(pairs[i + 1]) for i in range(0, len(pairs), 2)
            }
        return {}

    def holders(self, keys: Sequence[LockKey]) -> dict[LockKey, str]:
        ordered = sorted(set(keys))
        if not ordered:
            return {}
        args = [encoding.field(key) for key in ordered]
        reply = self._run(
            "read lock holders",
            lambda: self.scripts["holders"](keys=[self.locks_key, self.active_key], args=args),
        )
        return {
            encoding.key(reply[i]): encoding.text(reply[i + 1]) for i in range(0, len(reply), 2)
        }

    def release(self, task_name: str) -> int:
        if impossible_name(task_name):
            return 0
        script_keys = [self.locks_key, self.owners_key, self._owned_key(task_name)]
        return int(
            self._run(
                f"release locks of {task_name}",
                lambda: self.scripts["release"](keys=script_keys, args=[task_name]),
            )
        )

    def release_expired(self, task_name: str) -> int:
        if impossible_name(task_name):
            return 0
        script_keys = [
            self.locks_key,
            self.owners_key,
            self._owned_key(task_name),
            self._task_key(task_name),
        ]
        script = self.scripts["release_expired"]
        return int(
            self._run(
                f"release expired locks of {task_name}",
                lambda: script(keys=script_keys, args=[task_name]),
            )
        )

    def renew(self, task_name: str, ttl: float) -> int:
        script_keys = [self.locks_key, self._owned_key(task_name)]
        args: list[Any] = [task_name, int(round(ttl * 1000))]
        renew = self.scripts["renew"]
        return int(
            self._run(f"renew locks of {task_name}", lambda: renew(keys=script_keys, args=args))
        )

    def locks(
        self,
        *,
        task_name: str | None = None,
        model_label: str | None = None,
        object_pk: str | None = None,
    ) -> list[LockInfo]:
        def read() -> list[tuple[Any, Any]]:
            if task_name is not None:
                flat = self.scripts["task_locks"](
                    keys=[self.locks_key, self._owned_key(task_name)], args=[task_name]
                )
                return list(zip(flat[::2], flat[1::2], strict=True))
            if model_label is not None and object_pk is not None:
                field = encoding.field((model_label, object_pk))
                value = self.client.hget(self.locks_key, field)
                return [] if value is None else [(field, value)]
            return list(self.client.hscan_iter(self.locks_key, count=1000))

        rows = [encoding.parse_lock(f, v) for f, v in self._run("list locks", read)]
        result = [
            row
            for row in rows
            if (model_label is None or row.model_label == model_label)
            and (object_pk is None or row.object_pk == object_pk)
        ]
        result.sort(key=lambda r: (r.acquired_at, r.model_label, r.object_pk))
        return result

    def lock_owners(self) -> set[str]:
        members = self._run("list lock owners", lambda: self.client.smembers(self.owners_key))
        return {encoding.text(m) for m in members}

    def lock_counts(self) -> tuple[int, int]:
        """One HVALS: owners are read off the values, no lock is parsed into a row."""
        values = self._run("count locks", lambda: self.client.hvals(self.locks_key))
        return len(values), len({encoding.text(value).split("|", 2)[2] for value in values})

    # -- registry ----------------------------------------------------------------------------
    @staticmethod
    def _row(info: TaskInfo) -> list[tuple[str, str]]:
        """The hash fields of a new registry row (``created_at`` defaults to now, as in the DB)."""
        created = info.created_at or timezone.now()
        pairs = [
            (name, encoding.encode(name, created if name == "created_at" else getattr(info, name)))
            for name in encoding.INFO_FIELDS
        ]
        pairs.append(("~cts", encoding.timestamp(created)))
        pairs.append(("~fts", encoding.timestamp(info.finished_at)))
        return pairs

    def register(self, info: TaskInfo) -> None:
        self.acquire(info.task_name, (), 0, register=info)

    def get(self, task_name: str) -> TaskInfo | None:
        if impossible_name(task_name):
            return None
        row = self._run(f"read {task_name}", lambda: self.client.hgetall(self._task_key(task_name)))
        return encoding.to_info(row) if row else None

    def get_many(self, task_names: Iterable[str]) -> dict[str, TaskInfo]:
        names = [name for name in dict.fromkeys(task_names) if not impossible_name(name)]
        if not names:
            return {}

        def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self._task_key(name))
            return pipe.execute()

        rows = self._run("read tasks", read)
        return {name: encoding.to_info(row) for name, row in zip(names, rows, strict=True) if row}

    @staticmethod
    def _changes(changes: dict[str, Any], *, timestamps: bool = True) -> list[tuple[str, str]]:
        pairs = [(name, encoding.encode(name, value)) for name, value in changes.items()]
        if timestamps and "finished_at" in changes:
            pairs.append(("~fts", encoding.timestamp(changes["finished_at"])))
        return pairs

    def _write_args(self, change: RowChange) -> tuple[list[str], list[Any]]:
        """Keys and arguments of ``set_fields.lua`` for ``change``."""
        changes = dict(change.changes)
        status = changes.pop("status", None)
        pairs = [("status", encode_status(status))] if status is not None else []
        pairs += self._changes(changes)
        statuses = [encode_status(s) for s in change.statuses or ()]
        expected = self._changes(dict(change.expect), timestamps=False)
        args: list[Any] = [
            change.task_name,
            "0" if change.statuses is None else "1",
            uuid.uuid4().hex,
            len(statuses),
            *statuses,
            len(expected),
            *encoding.flatten(expected),
            *encoding.flatten(pairs),
        ]
        return [self._task_key(change.task_name), self.active_key, self.finished_key], args

    def _write(self, change: RowChange) -> bool:
        keys, args = self._write_args(change)
        script = self.scripts["set_fields"]
        return bool(self._run(f"update {change.task_name}", lambda: script(keys=keys, args=args)))

    def mark_delivered(self, task_names: Collection[str]) -> int:
        """One round trip: a pipeline of compare-and-sets, one per task."""
        changes = [
            RowChange(name, None, {"events_due": False}, {"events_due": True})
            for name in task_names
            if not impossible_name(name)
        ]
        if not changes:
            return 0
        script = self.scripts["set_fields"]

        def clear() -> int:
            pipe = self.client.pipeline(transaction=False)
            for change in changes:
                keys, args = self._write_args(change)
                script(keys=keys, args=args, client=pipe)
            return sum(int(done) for done in pipe.execute())

        return int(self._run("mark final events delivered", clear))

    def _finish(self, change: RowChange) -> int | None:
        keys, args = self._write_args(change)
        keys += [self.locks_key, self.owners_key, self._owned_key(change.task_name)]
        script = self.scripts["finish"]
        released = int(
            self._run(f"finish {change.task_name}", lambda: script(keys=keys, args=args))
        )
        return None if released < 0 else released

    def active(self) -> list[TaskInfo]:
        reply = self._run(
            "list active tasks",
            lambda: self.scripts["active"](keys=[self.active_key], args=[self.prefix]),
        )
        infos = [encoding.to_info(row) for _, row in reply]
        infos = [info for info in infos if info.is_active]
        infos.sort(key=lambda info: (info.created_at, info.task_name))
        return infos

    def finished_before(self, when: datetime) -> list[str]:
        bound = f"({when.timestamp()!r}"
        names: list[Any] = self._run(
            "list finished tasks",
            lambda: self.client.zrangebyscore(self.finished_key, "-inf", bound),
        )
        return [encoding.text(name) for name in names]

    def undelivered(self, when: datetime) -> list[TaskInfo]:
        names = sorted(
            encoding.text(n)
            for n in self._run(
                "list tasks with events due", lambda: self.client.smembers(self.due_key)
            )
        )
        infos = [
            info
            for info in self.get_many(names).values()
            if info.events_due
            and not info.is_active
            and info.finished_at is not None
            and info.finished_at < when
        ]
        infos.sort(key=lambda info: info.finished_at)  # type: ignore[arg-type, return-value]
        return infos

    def delete(self, task_name: str) -> bool:
        if impossible_name(task_name):
            return False
        script_keys = [self._task_key(task_name), self.active_key, self.finished_key, self.due_key]
        delete = self.scripts["delete"]
        return bool(
            self._run(f"delete {task_name}", lambda: delete(keys=script_keys, args=[task_name]))
        )
