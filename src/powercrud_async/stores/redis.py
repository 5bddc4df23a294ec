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

import base64
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, TypeVar

import redis
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import conf
from ..conflicts import LockKey, impossible_name
from ..exceptions import InvalidTaskName
from ..statuses import ACTIVE
from .base import MUTABLE_FIELDS, LockInfo, TaskInfo, TaskStore
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
INFO_FIELDS = [f.name for f in fields(TaskInfo)]
DATETIME_FIELDS = frozenset({"created_at", "started_at", "heartbeat_at", "finished_at"})
#: Keys per SADD inside scripts: small enough for Lua's ``unpack`` stack, large enough to be cheap.
LUA_BATCH = 500


def _lua_str(value: str) -> str:
    """A Lua long-bracket string literal (no escaping rules to get wrong)."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    return f"[{eq}[{value}]{eq}]"


def _encode_status(status: str) -> str:
    return json.dumps(str(status))


_ACTIVE_TABLE = "{" + ", ".join(f"[ {_lua_str(_encode_status(s))} ] = true" for s in ACTIVE) + "}"

# Shared helpers. TIME is the server clock, so every machine agrees on what has expired.
_PRELUDE = f"""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local ACTIVE = {_ACTIVE_TABLE}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(x) return string.format('%.0f', x) end
local function parse(v)
  local e, a, o = string.match(v, '^(%-?%d+)|(%-?%d+)|(.*)$')
  return tonumber(e), a, o
end
-- Put a registry row in the index its status belongs to, and in the set of tasks whose
-- final events are due while they are.
local function reindex(task_key, name, active_key, finished_key)
  local status = redis.call('HGET', task_key, 'status')
  if status and ACTIVE[status] then
    redis.call('SADD', active_key, name)
    redis.call('ZREM', finished_key, name)
  else
    redis.call('SREM', active_key, name)
    local score = tonumber(redis.call('HGET', task_key, '~fts') or '')
      or tonumber(redis.call('HGET', task_key, '~cts') or '') or 0
    redis.call('ZADD', finished_key, score, name)
  end
  if redis.call('HGET', task_key, 'events_due') == 'true' then
    redis.call('SADD', finished_key .. ':due', name)
  else
    redis.call('SREM', finished_key .. ':due', name)
  end
end
"""

# KEYS: locks, owners, active, finished, task:<registered name>
# ARGV: prefix, task, ttl_ms, token, reg_name, n_adopt, adopt..., n_reg, reg pairs...,
#       strict (1: only the listed fields may be re-entered), n_reenter, reenter..., fields...
_ACQUIRE = _PRELUDE + f"""
local prefix, task, ttl, token, reg_name = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local i = 6
local adopt = {{}}
local n_adopt = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_adopt do adopt[ARGV[i]] = true; i = i + 1 end
local n_reg = tonumber(ARGV[i]); i = i + 1
local reg_start = i
i = i + n_reg
local strict = ARGV[i] == '1'; i = i + 1
local reenter = {{}}
local n_reenter = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_reenter do reenter[ARGV[i]] = true; i = i + 1 end
local first = i
if n_reg > 0 and redis.call('EXISTS', KEYS[5]) == 1 then
  -- The same call, retried after a lost reply, finds its own registration: it already won.
  if redis.call('HGET', KEYS[5], '~tok') == token then return {{'ok'}} end
  return {{'dup'}}
end
local now = now_ms()
local conflicts = {{}}
local prev = {{}}
for k = first, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[k])
  if v then
    local expires, acquired, owner = parse(v)
    if (owner == task and (not strict or reenter[ARGV[k]])) or adopt[owner] then
      prev[k] = {{owner, acquired}}
    elseif expires <= now and redis.call('SISMEMBER', KEYS[3], owner) == 0 then
      prev[k] = {{owner, nil}}
    else
      conflicts[#conflicts + 1] = ARGV[k]
      conflicts[#conflicts + 1] = owner
    end
  end
end
if #conflicts > 0 then return {{'conflict', conflicts}} end
local owned = prefix .. 'owned:' .. task
local expiry = num(now + ttl)
local fresh = expiry .. '|' .. num(now) .. '|' .. task
local touched = {{}}
local batch = {{}}
-- Every key gets the new expiry: a lock re-added by its owner is renewed, not left to expire.
for k = first, #ARGV do
  local p = prev[k]
  local field = ARGV[k]
  local value = fresh
  if p then
    if p[1] ~= task then
      redis.call('SREM', prefix .. 'owned:' .. p[1], field)
      touched[p[1]] = true
    end
    if p[2] then value = expiry .. '|' .. p[2] .. '|' .. task end
  end
  redis.call('HSET', KEYS[1], field, value)
  batch[#batch + 1] = field
  if #batch == {LUA_BATCH} then
    redis.call('SADD', owned, unpack(batch))
    batch = {{}}
  end
end
if #batch > 0 then redis.call('SADD', owned, unpack(batch)) end
for owner in pairs(touched) do
  if redis.call('SCARD', prefix .. 'owned:' .. owner) == 0 then redis.call('SREM', KEYS[2], owner) end
end
if first <= #ARGV then redis.call('SADD', KEYS[2], task) end
if n_reg > 0 then
  for j = reg_start, reg_start + n_reg - 1, 2 do
    redis.call('HSET', KEYS[5], ARGV[j], ARGV[j + 1])
  end
  redis.call('HSET', KEYS[5], '~tok', token)
  reindex(KEYS[5], reg_name, KEYS[3], KEYS[4])
end
return {{'ok'}}
"""

# KEYS: locks, active. ARGV: fields. Returns field, holder pairs.
_HOLDERS = _PRELUDE + """
local now = now_ms()
local out = {}
for k = 1, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[k])
  if v then
    local expires, _, owner = parse(v)
    if expires > now or redis.call('SISMEMBER', KEYS[2], owner) == 1 then
      out[#out + 1] = ARGV[k]
      out[#out + 1] = owner
    end
  end
end
return out
"""

# KEYS: locks, owners, owned:<task>. ARGV: task.
_RELEASE = """
local n = 0
for _, field in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local v = redis.call('HGET', KEYS[1], field)
  if v and string.match(v, '^[^|]*|[^|]*|(.*)$') == ARGV[1] then
    redis.call('HDEL', KEYS[1], field)
    n = n + 1
  end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
return n
"""

# KEYS: locks, owned:<task>. ARGV: task, ttl_ms.
_RENEW = _PRELUDE + """
local expiry = num(now_ms() + tonumber(ARGV[2]))
local n = 0
for _, field in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local v = redis.call('HGET', KEYS[1], field)
  if v then
    local _, acquired, owner = parse(v)
    if owner == ARGV[1] then
      redis.call('HSET', KEYS[1], field, expiry .. '|' .. acquired .. '|' .. owner)
      n = n + 1
    end
  end
end
return n
"""

# KEYS: locks, owned:<task>. ARGV: task. Returns field, value pairs of the task's locks.
_TASK_LOCKS = """
local out = {}
for _, field in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local v = redis.call('HGET', KEYS[1], field)
  if v and string.match(v, '^[^|]*|[^|]*|(.*)$') == ARGV[1] then
    out[#out + 1] = field
    out[#out + 1] = v
  end
end
return out
"""

# KEYS: task:<name>, active, finished.
# ARGV: name, check (0/1), token, n_from, from..., n_expect, expected field/value pairs..., pairs...
# The compare-and-set of the registry: the row changes only from a status it is seen in, and
# only while each expected field still holds the value that was read (the attempt, the last
# heartbeat). The token makes a retry of a call whose reply was lost report the success it
# had, not a lost race.
_SET_FIELDS = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n_from = tonumber(ARGV[4])
local n_expect = tonumber(ARGV[5 + n_from])
local ok = true
if ARGV[2] == '1' then
  local status = redis.call('HGET', KEYS[1], 'status')
  ok = false
  for j = 5, 4 + n_from do
    if status == ARGV[j] then ok = true end
  end
end
local e = 6 + n_from
for j = e, e + 2 * n_expect - 1, 2 do
  if (redis.call('HGET', KEYS[1], ARGV[j]) or 'null') ~= ARGV[j + 1] then ok = false end
end
if not ok then
  if redis.call('HGET', KEYS[1], '~ttok') == ARGV[3] then return 1 end
  return 0
end
if ARGV[2] == '1' or n_expect > 0 then redis.call('HSET', KEYS[1], '~ttok', ARGV[3]) end
for j = e + 2 * n_expect, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1])
end
reindex(KEYS[1], ARGV[1], KEYS[2], KEYS[3])
return 1
"""

# KEYS: task:<name>, active, finished, finished:due. ARGV: name.
_DELETE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
return 1
"""

# KEYS: active. ARGV: prefix. Returns {name, {field, value, ...}} per active task.
_ACTIVE = """
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local row = redis.call('HGETALL', ARGV[1] .. 'task:' .. name)
  if #row > 0 then out[#out + 1] = {name, row} end
end
return out
"""


def _text(value: bytes | str) -> str:
    """Responses are bytes unless the caller's client decodes them."""
    return value.decode() if isinstance(value, bytes) else value


def _field(key: LockKey) -> str:
    # Model labels never contain ':', so the first ':' separates label from pk.
    return f"{key[0]}:{key[1]}"


def _key(field: bytes | str) -> LockKey:
    label, _, pk = _text(field).partition(":")
    return label, pk


def _ms_to_datetime(ms: str | int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=dt_timezone.utc)


def _parse_lock(field: bytes | str, value: bytes | str) -> LockInfo:
    expires, acquired, owner = _text(value).split("|", 2)
    label, pk = _key(field)
    return LockInfo(
        model_label=label,
        object_pk=pk,
        task_name=owner,
        acquired_at=_ms_to_datetime(acquired),
        expires_at=_ms_to_datetime(expires),
    )


def _encode(name: str, value: Any) -> str:
    """One TaskInfo field as JSON text; datetimes as ISO 8601, ``call`` bytes as base64."""
    if value is None:
        return "null"
    if name in DATETIME_FIELDS:
        return json.dumps(value.isoformat())
    if name == "call":
        return json.dumps(base64.b64encode(bytes(value)).decode("ascii"))
    if name == "status":
        return _encode_status(value)
    return json.dumps(value, separators=(",", ":"))


def _decode(name: str, text: str) -> Any:
    value = json.loads(text)
    if value is None:
        return None
    if name in DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    if name == "call":
        return base64.b64decode(value)
    return value


def _timestamp(value: datetime | None) -> str:
    return "" if value is None else repr(value.timestamp())


def _to_info(row: dict[Any, Any] | list[Any]) -> TaskInfo:
    if isinstance(row, list):  # HGETALL from a script: a flat field, value list
        row = dict(zip(row[::2], row[1::2], strict=True))
    values: dict[str, Any] = {}
    for raw_name, raw_value in row.items():
        name = _text(raw_name)
        if name in INFO_FIELDS:
            values[name] = _decode(name, _text(raw_value))
    if values.get("conflict_ids") is None:
        values["conflict_ids"] = {}
    return TaskInfo(**values)


def _flatten(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [item for pair in pairs for item in pair]


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
        register = self.client.register_script
        self._acquire = register(_ACQUIRE)
        self._holders = register(_HOLDERS)
        self._release = register(_RELEASE)
        self._renew = register(_RENEW)
        self._task_locks = register(_TASK_LOCKS)
        self._set_fields = register(_SET_FIELDS)
        self._delete = register(_DELETE)
        self._active = register(_ACTIVE)

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
    def acquire(
        self,
        task_name: str,
        keys: Sequence[LockKey],
        ttl: float,
        *,
        adopt: Collection[str] = (),
        register: TaskInfo | None = None,
        reenter: Collection[LockKey] | None = None,
    ) -> dict[LockKey, str]:
        ordered = sorted(set(keys))
        reentered = [] if reenter is None else [_field(key) for key in sorted(set(reenter))]
        if not ordered and register is None:
            return {}
        adopt_names = sorted(set(adopt))
        reg_pairs = _flatten(self._row(register)) if register is not None else []
        reg_name = register.task_name if register is not None else ""
        args: list[Any] = [
            self.prefix, task_name, int(round(ttl * 1000)), uuid.uuid4().hex, reg_name,
            len(adopt_names), *adopt_names, len(reg_pairs), *reg_pairs,
            "0" if reenter is None else "1", len(reentered), *reentered,
            *(_field(key) for key in ordered),
        ]
        script_keys = [
            self.locks_key, self.owners_key, self.active_key, self.finished_key,
            self._task_key(reg_name),
        ]
        reply = self._run(
            f"acquire locks for {task_name}", lambda: self._acquire(keys=script_keys, args=args)
        )
        outcome = _text(reply[0])
        if outcome == "dup":
            raise InvalidTaskName(
                f"A task named {reg_name!r} already exists; task keys must be unique."
            )
        if outcome == "conflict":
            pairs = reply[1]
            return {_key(pairs[i]): _text(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        return {}

    def holders(self, keys: Sequence[LockKey]) -> dict[LockKey, str]:
        ordered = sorted(set(keys))
        if not ordered:
            return {}
        args = [_field(key) for key in ordered]
        reply = self._run(
            "read lock holders",
            lambda: self._holders(keys=[self.locks_key, self.active_key], args=args),
        )
        return {_key(reply[i]): _text(reply[i + 1]) for i in range(0, len(reply), 2)}

    def release(self, task_name: str) -> int:
        if impossible_name(task_name):
            return 0
        script_keys = [self.locks_key, self.owners_key, self._owned_key(task_name)]
        return int(
            self._run(
                f"release locks of {task_name}",
                lambda: self._release(keys=script_keys, args=[task_name]),
            )
        )

    def renew(self, task_name: str, ttl: float) -> int:
        script_keys = [self.locks_key, self._owned_key(task_name)]
        args: list[Any] = [task_name, int(round(ttl * 1000))]
        return int(
            self._run(f"renew locks of {task_name}", lambda: self._renew(keys=script_keys, args=args))
        )

    def locks(
        self, *, task_name: str | None = None, model_label: str | None = None, object_pk: str | None = None
    ) -> list[LockInfo]:
        def read() -> list[tuple[Any, Any]]:
            if task_name is not None:
                flat = self._task_locks(
                    keys=[self.locks_key, self._owned_key(task_name)], args=[task_name]
                )
                return list(zip(flat[::2], flat[1::2], strict=True))
            if model_label is not None and object_pk is not None:
                field = _field((model_label, object_pk))
                value = self.client.hget(self.locks_key, field)
                return [] if value is None else [(field, value)]
            return list(self.client.hscan_iter(self.locks_key, count=1000))

        rows = [_parse_lock(f, v) for f, v in self._run("list locks", read)]
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
        return {_text(m) for m in members}

    # -- registry ----------------------------------------------------------------------------
    @staticmethod
    def _row(info: TaskInfo) -> list[tuple[str, str]]:
        """The hash fields of a new registry row (``created_at`` defaults to now, as in the DB)."""
        created = info.created_at or timezone.now()
        pairs = [
            (name, _encode(name, created if name == "created_at" else getattr(info, name)))
            for name in INFO_FIELDS
        ]
        pairs.append(("~cts", _timestamp(created)))
        pairs.append(("~fts", _timestamp(info.finished_at)))
        return pairs

    def register(self, info: TaskInfo) -> None:
        self.acquire(info.task_name, (), 0, register=info)

    def get(self, task_name: str) -> TaskInfo | None:
        if impossible_name(task_name):
            return None
        row = self._run(f"read {task_name}", lambda: self.client.hgetall(self._task_key(task_name)))
        return _to_info(row) if row else None

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
        return {name: _to_info(row) for name, row in zip(names, rows, strict=True) if row}

    @staticmethod
    def _changes(changes: dict[str, Any], *, timestamps: bool = True) -> list[tuple[str, str]]:
        unknown = set(changes) - MUTABLE_FIELDS
        if unknown:
            raise ValueError(f"Cannot change {', '.join(sorted(unknown))} of a registered task.")
        pairs = [(name, _encode(name, value)) for name, value in changes.items()]
        if timestamps and "finished_at" in changes:
            pairs.append(("~fts", _timestamp(changes["finished_at"])))
        return pairs

    def _set(
        self,
        operation: str,
        task_name: str,
        check: bool,
        statuses: Collection[str],
        pairs: list[tuple[str, str]],
        expect: Mapping[str, Any] | None,
    ) -> bool:
        encoded = [_encode_status(s) for s in statuses]
        expected = self._changes(dict(expect or {}), timestamps=False)
        args: list[Any] = [
            task_name, "1" if check else "0", uuid.uuid4().hex, len(encoded), *encoded,
            len(expected), *_flatten(expected), *_flatten(pairs),
        ]
        script_keys = [self._task_key(task_name), self.active_key, self.finished_key]
        return bool(self._run(operation, lambda: self._set_fields(keys=script_keys, args=args)))

    def transition(
        self,
        task_name: str,
        from_statuses: Collection[str],
        to_status: str,
        *,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        pairs = [("status", _encode_status(to_status)), *self._changes(changes)]
        return self._set(
            f"move {task_name} to {to_status}", task_name, True, list(from_statuses), pairs, expect
        )

    def update(
        self,
        task_name: str,
        *,
        only_statuses: Collection[str] = (),
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        pairs = self._changes(changes)
        if "status" in changes:
            raise ValueError("Use transition() to change a task's status.")
        if not pairs:
            return False  # as the database store: an empty update changes no row
        statuses = list(only_statuses)
        return self._set(f"update {task_name}", task_name, bool(statuses), statuses, pairs, expect)

    def active(self) -> list[TaskInfo]:
        reply = self._run(
            "list active tasks", lambda: self._active(keys=[self.active_key], args=[self.prefix])
        )
        infos = [_to_info(row) for _, row in reply]
        infos = [info for info in infos if info.is_active]
        infos.sort(key=lambda info: (info.created_at, info.task_name))  # type: ignore[arg-type, return-value]
        return infos

    def finished_before(self, when: datetime) -> list[str]:
        bound = f"({when.timestamp()!r}"
        names: list[Any] = self._run(
            "list finished tasks", lambda: self.client.zrangebyscore(self.finished_key, "-inf", bound)
        )
        return [_text(name) for name in names]

    def undelivered(self, when: datetime) -> list[TaskInfo]:
        names = sorted(_text(n) for n in self._run(
            "list tasks with events due", lambda: self.client.smembers(self.due_key)
        ))
        infos = [info for info in self.get_many(names).values()
                 if info.events_due and not info.is_active
                 and info.finished_at is not None and info.finished_at < when]
        infos.sort(key=lambda info: info.finished_at)  # type: ignore[arg-type, return-value]
        return infos

    def delete(self, task_name: str) -> bool:
        if impossible_name(task_name):
            return False
        script_keys = [self._task_key(task_name), self.active_key, self.finished_key, self.due_key]
        return bool(
            self._run(f"delete {task_name}", lambda: self._delete(keys=script_keys, args=[task_name]))
        )
