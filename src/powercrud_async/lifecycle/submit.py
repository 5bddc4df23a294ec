"""Launching a job: validate everything, lock and register, enqueue, emit ``create``.

``AsyncManager.launch_async_task`` is the public face; this is the work, in the order the
guarantees need: nothing is locked, registered or enqueued until every argument is valid, and a
failure at any later step leaves nothing behind.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, connections, router, transaction
from django.utils import timezone

from .. import broker, conf, progress
from ..callables import dumps_call, resolve_func
from ..conflicts import LockKey, normalize_conflict_ids, text_problem, to_json, to_keys
from ..exceptions import ConflictError, EnqueueError, InvalidLaunchOption, InvalidTaskName
from ..models import LiveTask
from ..statuses import Event, TaskStatus
from ..stores import TaskInfo, get_store
from ..stores.retry import retrying
from . import reservations
from .protocol import Manager

logger = logging.getLogger("powercrud_async.lifecycle.submit")


class _CreateNotWritten(Exception):
    """The write ``prepare_within`` gave failed inside the launch's transaction (rolled back)."""


class _KeysTaken(Exception):
    """A prepared launch found a key taken: its transaction is rolled back for ``acquire``."""


TASK_KEY_MAX_LENGTH = 100  # django-q2's Task.name length: our key is its task_name
GROUP_MAX_LENGTH = LiveTask._meta.get_field("group").max_length or 100
LABEL_MAX_LENGTH = LiveTask._meta.get_field("label").max_length or 255


def validate_name(name: Any, what: str, max_length: int) -> str:
    """A task key or lock owner: a non-empty string that fits its column (django-q2's included)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidTaskName(f"{what} must be a non-empty string, got {name!r}.")
    problem = text_problem(name, max_length)
    if problem:
        raise InvalidTaskName(f"{what} {name[:20]!r} {problem}.")
    return name


def validate_options(
    *,
    task_kwargs: Any,
    q_options: Any,
    timeout: Any,
    group: Any,
    sync: Any = None,
    task_label: Any = None,
) -> None:
    """The django-q2-bound options, checked here so a bad one fails before anything is locked."""
    for name, value in (("task_kwargs", task_kwargs), ("q_options", q_options)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidLaunchOption(f"{name} must be a mapping, got {type(value).__name__}.")
    if sync is not None and not isinstance(sync, bool):
        raise InvalidLaunchOption(f"sync must be True, False or None, got {sync!r}.")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0
    ):
        raise InvalidLaunchOption(f"timeout must be a positive number of seconds, got {timeout!r}.")
    for name, value, max_length in (
        ("group", group, GROUP_MAX_LENGTH),
        ("task_label", task_label, LABEL_MAX_LENGTH),
    ):
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidLaunchOption(f"{name} must be a string, got {type(value).__name__}.")
        problem = text_problem(value, max_length)
        if problem:
            raise InvalidLaunchOption(f"{name} {value[:20]!r} {problem}.")


def django_q_options(q_options: Any, *, cached: Any, broker: Any, kwargs: dict[str, Any]) -> Any:
    """PowerCRUD's ``cached``/``broker`` parameters and ``save`` keyword, moved into ``q_options``
    (where an explicit ``q_options`` entry still wins) so they reach django-q2, not the worker."""
    extra = {"cached": cached, "broker": broker, "save": kwargs.pop("save", None)}
    extra = {key: value for key, value in extra.items() if value is not None}
    if not extra or (q_options is not None and not isinstance(q_options, Mapping)):
        return q_options  # nothing to move, or a bad q_options that validate_options reports
    return {**extra, **(q_options or {})}


def user_id(user: Any) -> str | None:
    """The launcher's pk as a string (the progress endpoint's owner), or None for no real user."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return None if pk is None else str(pk)


def group_conflicts(conflicts: Mapping[LockKey, str]) -> dict[str, dict[str, str]]:
    """``{(label, pk): holder}`` as ``{label: {pk: holder}}``, the shape ``ConflictError`` carries."""
    grouped: dict[str, dict[str, str]] = {}
    for (label, pk), holder in conflicts.items():
        grouped.setdefault(label, {})[pk] = holder
    return grouped


def undo_launch(task_key: str) -> None:
    """Undo a launch whose enqueue failed outside a shared transaction."""
    store = get_store()
    store.release(task_key)
    store.delete(task_key)
    progress.delete(task_key)


@dataclass(frozen=True, kw_only=True)
class Launch:
    """One launch as the caller asked for it (``AsyncManager.launch_async_task``'s arguments,
    PowerCRUD's ``cached``/``broker``/``save`` already moved into ``q_options``)."""

    func: Callable[..., Any] | str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    conflict_ids: Any = None
    user: Any = None
    affected_objects: Any = None
    task_key: str | None = None
    group: str | None = None
    timeout: int | None = None
    sync: bool | None = None
    q_options: Mapping[str, Any] | None = None
    task_kwargs: Mapping[str, Any] | None = None
    retry_of: str = ""
    task_label: str | None = None


def _prepare_create(
    manager: Manager, using: str, task_key: str, payload: Mapping[str, Any]
) -> Callable[[], None] | None:
    """The manager's write of ``create`` inside the launch's transaction, if it offers one. A
    manager that fails to prepare it gets the event after commit, where its handler reports
    what is wrong."""
    try:
        return manager.prepare_within(using, Event.CREATE, task_key, **payload)
    except Exception:  # noqa: BLE001 - emitted after commit instead
        return None


def launch(manager: Manager, request: Launch) -> str:
    """Validate, lock, register, enqueue and emit ``create``; returns the task key."""
    func, args, user, retry_of = request.func, request.args, request.user, request.retry_of
    group, timeout, task_label = request.group, request.timeout, request.task_label
    q_options, task_kwargs = request.q_options, request.task_kwargs
    func_path, _ = resolve_func(func)
    task_key = str(uuid.uuid4()) if request.task_key is None else request.task_key
    task_key = validate_name(task_key, "task_key", TASK_KEY_MAX_LENGTH)
    normalized = normalize_conflict_ids(request.conflict_ids)
    validate_options(
        task_kwargs=task_kwargs,
        q_options=q_options,
        timeout=timeout,
        group=group,
        sync=request.sync,
        task_label=task_label,
    )
    q_options = dict(q_options or {})
    sync = broker.effective_sync(request.sync, q_options)
    worker_kwargs = {**(task_kwargs or {}), **request.kwargs}
    keys = to_keys(normalized)
    info = TaskInfo(
        task_name=task_key,
        status=TaskStatus.PENDING,
        func_path=func_path,
        call=dumps_call(args, worker_kwargs),
        manager_class=manager.class_path(),
        manager_config=manager.config or None,
        user_id=user_id(user),
        conflict_ids=to_json(normalized),
        group=group or "",
        created_at=timezone.now(),
        retry_of=retry_of,
        label=task_label or "",
    )
    store = get_store()
    adopt = reservations.holders_of(keys) - {task_key}
    envelope = {
        "task_name": task_key,
        "func": func_path,
        "args": list(args),
        "kwargs": worker_kwargs,
        "manager_class": manager.class_path(),
        "manager_config": manager.config or None,
        # What the runner needs to start without reading the registry row first.
        "user_id": info.user_id,
        "created_at": info.created_at,
        "conflict_ids": info.conflict_ids,
    }
    create_payload = {
        "status": TaskStatus.PENDING,
        "message": "Queued",
        "user": user,
        "affected_objects": request.affected_objects,
        "task_args": list(args),
        "task_kwargs": worker_kwargs,
        "func_path": func_path,
        "conflict_ids": info.conflict_ids,
        "retry_of": retry_of,
        "label": info.label,
        "created_at": info.created_at,
    }

    def lock_and_register() -> None:
        conflicts = store.acquire(
            task_key, keys, conf.get("CONFLICT_TTL"), adopt=adopt, register=info
        )
        if conflicts:
            raise ConflictError(group_conflicts(conflicts))

    def enqueue_failed(exc: BaseException) -> EnqueueError:
        return EnqueueError(
            f"django-q2 could not enqueue task {task_key} ({func_path}): {exc}. "
            "Its locks and registration were rolled back."
        )

    def enqueue(*, rollback: bool) -> None:
        try:
            broker.enqueue(
                task_key,
                envelope,
                group=group,
                timeout=timeout,
                sync=sync,
                q_options=dict(q_options),
            )
        except BaseException as exc:
            ran = store.get(task_key) if sync else None
            if ran is not None and not ran.is_active:
                raise  # a sync job ran and failed: django-q2 re-raises the job's own error
            if rollback:
                undo_launch(task_key)
            raise enqueue_failed(exc) from exc

    using = router.db_for_write(LiveTask)
    in_transaction = connections[using].in_atomic_block
    if (
        not sync
        and not in_transaction
        and broker.orm_broker_alias() == getattr(store, "using", None)
    ):
        # Locks, registration and the broker row share a database: one transaction holds them
        # all, so a failure anywhere leaves nothing behind and the launch costs one commit. A
        # manager that only writes to that database writes its ``create`` in it too.
        write_create = _prepare_create(manager, using, task_key, create_payload)
        # On SQLite that transaction holds the one write lock of the database, so whatever
        # can be built before it is: the registry and lock rows (taken in it only if every
        # key is free, else it is rolled back and the locks are sorted out by acquire()) and
        # the signed job. A job signed here is pushed by the transaction, however often it runs.
        register = None if adopt else store.prepare_register(info, keys, conf.get("CONFLICT_TTL"))
        push = None
        if register is not None:
            try:
                push = broker.prepare_enqueue(
                    task_key, envelope, group=group, timeout=timeout, q_options=dict(q_options)
                )
            except Exception as exc:
                raise enqueue_failed(exc) from exc
            if push is None:
                register = None

        def lock_register_enqueue(fast: bool) -> None:
            if register is not None and fast:
                if not register():
                    raise _KeysTaken
            else:
                lock_and_register()
            if push is None:
                enqueue(rollback=False)
                return
            try:
                push()
            except Exception as exc:
                raise enqueue_failed(exc) from exc

        def launch_atomically(within: bool, fast: bool) -> bool:
            with transaction.atomic(using=using):
                lock_register_enqueue(fast)
                if not within or write_create is None:
                    return False
                try:
                    write_create()
                except Exception as exc:
                    raise _CreateNotWritten from exc
                return True

        def launch_retrying(within: bool) -> bool:
            if register is not None:
                try:
                    return retrying(
                        f"launch {task_key}",
                        lambda: launch_atomically(within, True),
                        (OperationalError,),
                    )
                except _KeysTaken:
                    pass  # acquire() reads who holds what, then repairs or refuses
            return retrying(
                f"launch {task_key}", lambda: launch_atomically(within, False), (OperationalError,)
            )

        try:
            created = launch_retrying(True)
        except _CreateNotWritten as failed:
            logger.warning(
                "Could not write the create event of task %s with its launch (%s); launching it "
                "alone and emitting the event after commit.",
                task_key,
                failed.__cause__,
            )
            created = launch_retrying(False)
        reservations.forget(adopt, keys)
        if not created:
            manager.emit(Event.CREATE, task_key, **create_payload)
        return task_key

    lock_and_register()
    reservations.forget(adopt, keys)
    if sync:
        manager.emit(Event.CREATE, task_key, **create_payload)
        enqueue(rollback=True)
    elif in_transaction:

        def on_commit() -> None:
            enqueue(rollback=True)
            manager.emit(Event.CREATE, task_key, **create_payload)

        transaction.on_commit(on_commit, using=using)
    else:
        enqueue(rollback=True)
        manager.emit(Event.CREATE, task_key, **create_payload)
    return task_key
