"""Launch sites: start a locked job over selected rows from a CRUD view or a Django admin action.

Every launch site does the same three things: resolve the project's manager (so workers and hooks
rehydrate the same class and config), lock the selected rows all-or-nothing, and tell the person
what happened — the task key, or a refusal naming the task that already holds the rows. This
module holds that glue once, so views and admin actions stay a few lines long.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.module_loading import import_string
from django.utils.text import capfirst

from . import broker, conf
from .async_manager import AsyncManager
from .conflicts import normalize_label, normalize_pk, resolve_model
from .exceptions import ConflictError, EnqueueError, LockStoreUnavailable
from .lifecycle.submit import LABEL_MAX_LENGTH
from .statuses import TaskStatus

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.db.models import QuerySet
    from django.http import HttpRequest

__all__ = [
    "AsyncLaunchMixin",
    "AsyncMixin",
    "LaunchResult",
    "LockState",
    "async_admin_action",
    "describe_conflict",
    "job_label",
    "launch_for_objects",
    "lock_states",
]

#: How many object names travel in ``affected_objects`` before "... and N more".
AFFECTED_PREVIEW = 25


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchResult:
    """What a launch site tells the person: the task key, or why nothing started."""

    task_key: str | None
    message: str
    count: int = 0
    #: ``{"app_label.model": {pk: holding task}}`` when refused because of locks.
    conflicts: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.task_key is not None

    @property
    def holders(self) -> list[str]:
        return sorted({h for pks in self.conflicts.values() for h in pks.values()})


@dataclass(frozen=True, slots=True, kw_only=True)
class LockState:
    """Why a row cannot be touched right now: which task holds it and how far it has got."""

    task_key: str
    status: str
    status_label: str
    percent: float | None
    message: str

    def __str__(self) -> str:
        return f"locked by task {self.task_key}{_progress_suffix(self.status, self.percent)}"


def _progress_suffix(status: str, percent: float | None) -> str:
    if percent is not None:
        return f", {percent:.0f}%"
    if status == TaskStatus.PENDING:
        return ", queued"
    return ""


def _verbose(label: str, count: int) -> str:
    try:
        opts = apps.get_model(label)._meta
    except (LookupError, ValueError):
        return label
    return str(opts.verbose_name if count == 1 else opts.verbose_name_plural)


def describe_conflict(exc: ConflictError, manager: AsyncManager | None = None) -> str:
    """A refusal a person can act on: which rows, which task holds them, how far it has got."""
    manager = manager or AsyncManager.resolve_manager(None)
    by_holder: dict[str, list[tuple[str, str]]] = {}
    for label, pks in exc.conflicts.items():
        for pk, holder in pks.items():
            by_holder.setdefault(holder, []).append((label, pk))
    parts = []
    for holder, items in sorted(by_holder.items()):
        labels = sorted({label for label, _ in items})
        what = "; ".join(
            f"{_verbose(label, sum(1 for lb, _ in items if lb == label))} "
            + ", ".join(sorted((pk for lb, pk in items if lb == label), key=_natural))
            for label in labels
        )
        snapshot = manager.get_progress(holder) or {}
        suffix = _progress_suffix(str(snapshot.get("status", "")), snapshot.get("percent"))
        parts.append(f"{what} locked by task {holder}{suffix}")
    return "Not started: " + "; ".join(parts) + ". Try again when that task has finished."


def _natural(pk: str) -> tuple[int, int, str]:
    """Numbers in numeric order, then any other text (``"²"`` is a digit but no number)."""
    return (0, int(pk), "") if pk.isascii() and pk.isdigit() else (1, 0, pk)


def _func_name(func: Callable[..., Any] | str) -> str:
    if isinstance(func, str):
        return func.rsplit(".", 1)[-1]
    return getattr(func, "__name__", type(func).__name__)


def _split_objects(
    objects: Iterable[Any], conflict_model: Any
) -> tuple[type[models.Model], list[Any], list[str]]:
    """The model to lock, the pks (in selection order, no duplicates), and display names."""
    model: type[models.Model] | None = None
    if conflict_model is not None:
        model = resolve_model(conflict_model)
    elif isinstance(objects, models.QuerySet):
        model = objects.model
    items = list(objects)
    pks: list[Any] = []
    names: list[str] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, models.Model):
            model = model or type(item)
            pk, name = item.pk, str(item)
        else:
            pk, name = item, None
        if model is None:
            raise TypeError(
                "launch_for_objects got bare primary keys: pass conflict_model='app_label.Model'."
            )
        key = normalize_pk(model, pk)
        if key in seen:
            continue
        seen.add(key)
        pks.append(pk)
        names.append(name if name is not None else f"{model._meta.verbose_name} {key}")
    if model is None:
        raise TypeError("launch_for_objects needs objects or conflict_model='app_label.Model'.")
    return model, pks, names


def job_label(text: str) -> str:
    """A launch site's description as a job's title: capitalised and clipped to fit the column
    (a long description must not refuse the launch the way a caller's own bad label does)."""
    text = capfirst(" ".join(text.split())) or ""
    limit = LABEL_MAX_LENGTH
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _affected(names: Sequence[str]) -> list[str]:
    if len(names) <= AFFECTED_PREVIEW:
        return list(names)
    return [*names[:AFFECTED_PREVIEW], f"... and {len(names) - AFFECTED_PREVIEW} more"]


def launch_for_objects(
    func: Callable[..., Any] | str,
    objects: Iterable[Any],
    *,
    manager: AsyncManager | None = None,
    conflict_model: Any = None,
    user: Any = None,
    description: str | None = None,
    task_args: Sequence[Any] = (),
    task_kwargs: Mapping[str, Any] | None = None,
    pass_ids: bool = True,
    **launch_kwargs: Any,
) -> LaunchResult:
    """Lock the selected rows and launch ``func(ids, *task_args, **task_kwargs)`` over them.

    ``objects`` is a queryset, model instances, or primary keys (then ``conflict_model`` names the
    model). The worker receives the list of primary keys, never instances (django-q2 pickles
    arguments). A conflict or a refused enqueue changes nothing and comes back as a refusal
    message; bad input (an unknown model, a wrong pk type) raises before anything is locked.
    """
    manager = manager or AsyncManager.resolve_manager(None)
    model, pks, names = _split_objects(objects, conflict_model)
    noun_one, noun_many = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
    if not pks:
        return LaunchResult(task_key=None, message=f"No {noun_many} selected; nothing was started.")
    label = normalize_label(model)
    launch_kwargs.setdefault("affected_objects", _affected(names))
    key = launch_kwargs.pop("task_key", None) or str(uuid.uuid4())
    args = ((list(pks),) if pass_ids else ()) + tuple(task_args)
    what = description or _func_name(func).replace("_", " ")
    noun = noun_one if len(pks) == 1 else noun_many
    launch_kwargs.setdefault("task_label", job_label(f"{what} for {len(pks)} {noun}"))
    in_request = broker.effective_sync(launch_kwargs.get("sync"), launch_kwargs.get("q_options"))
    try:
        manager.launch_async_task(
            func,
            *args,
            conflict_ids={label: pks},
            user=user,
            task_key=key,
            task_kwargs=dict(task_kwargs or {}),
            **launch_kwargs,
        )
    except ConflictError as exc:
        return LaunchResult(
            task_key=None,
            message=describe_conflict(exc, manager),
            count=len(pks),
            conflicts=exc.conflicts,
        )
    except (EnqueueError, LockStoreUnavailable) as exc:
        return LaunchResult(task_key=None, message=f"Not started: {exc}", count=len(pks))
    except Exception as exc:
        if not (in_request and manager.get_task_info(key)):
            raise  # bad input: raised before anything was locked
        # A job run in the request (ASYNC_ENABLED off, or sync) failed: it is recorded.
        return LaunchResult(
            task_key=key, message=f"Task {key} failed: {type(exc).__name__}: {exc}", count=len(pks)
        )
    if in_request:
        return LaunchResult(
            task_key=key, message=f"Ran task {key}: {what} for {len(pks)} {noun}.", count=len(pks)
        )
    return LaunchResult(
        task_key=key, message=f"Started task {key}: {what} for {len(pks)} {noun}.", count=len(pks)
    )


def lock_states(
    model: Any, pks: Iterable[Any], manager: AsyncManager | None = None
) -> dict[str, LockState]:
    """``{pk as string: LockState}`` for the given rows that a task holds (one store query, and
    one cache read per holding task), so a list can mark locked rows."""
    manager = manager or AsyncManager.resolve_manager(None)
    model_class = resolve_model(model)
    label = normalize_label(model_class)
    pk_list = list(pks)
    if not pk_list:
        return {}
    held = manager.get_conflict_holders({label: pk_list}).get(label, {})
    snapshots: dict[str, dict[str, Any]] = {}
    states: dict[str, LockState] = {}
    for pk, holder in held.items():
        if holder not in snapshots:
            snapshots[holder] = manager.get_progress(holder) or {}
        snap = snapshots[holder]
        status = str(snap.get("status") or TaskStatus.PENDING)
        try:
            status_label = str(TaskStatus(status).label)
        except ValueError:
            status_label = status
        states[pk] = LockState(
            task_key=holder,
            status=status,
            status_label=status_label,
            percent=snap.get("percent"),
            message=str(snap.get("message") or ""),
        )
    return states


class AsyncMixin:
    """For CRUD views (neapolitan, Django generic views): which manager to launch through, and
    a one-call launch over selected rows that reports the task key or the refusal.

    Set ``async_manager_class_path`` (a dotted path) or override ``get_async_manager_class()``;
    by default the project's ``ASYNC_MANAGER_DEFAULT`` is used. The class path and config travel
    with every job, so the worker, the completion hook and cleanup use the same manager.
    """

    async_manager_class_path: str | None = None
    async_manager_config: Mapping[str, Any] | None = None
    #: The model whose rows are locked; defaults to the view's ``model``.
    async_conflict_model: Any = None

    def get_async_manager_class_path(self) -> str | None:
        return self.async_manager_class_path

    def get_async_manager_config(self) -> Mapping[str, Any] | None:
        return self.async_manager_config

    def get_async_manager_class(self) -> type[AsyncManager]:
        path = self.get_async_manager_class_path()
        if path is None:
            return type(AsyncManager.resolve_manager(None))
        return AsyncManager.import_class(path)

    def get_async_manager(self) -> AsyncManager:
        """An instance of ``get_async_manager_class()`` with its config (the default config when
        the class is the project default and no config of its own is set)."""
        manager_class = self.get_async_manager_class()
        config = self.get_async_manager_config()
        if config is None:
            default_path, default_config = AsyncManager.default_manager_setting()
            if default_path and _same_class(default_path, manager_class):
                config = default_config
        return manager_class(config)

    def get_async_conflict_model(self) -> Any:
        return self.async_conflict_model or getattr(self, "model", None)

    def is_async_enabled(self) -> bool:
        """``POWERCRUD_SETTINGS["ASYNC_ENABLED"]``. When off, ``launch_async`` runs the job in the
        request instead of a worker, under the same locks and lifecycle events."""
        return bool(conf.get("ASYNC_ENABLED"))

    def launch_async(
        self, func: Callable[..., Any] | str, objects: Iterable[Any], **kwargs: Any
    ) -> LaunchResult:
        """``launch_for_objects`` through this view's manager, as the requesting user (in the
        request itself when ``is_async_enabled()`` is false)."""
        if not self.is_async_enabled():
            kwargs.setdefault("sync", True)
        request = getattr(self, "request", None)
        kwargs.setdefault("user", getattr(request, "user", None))
        kwargs.setdefault("conflict_model", self.get_async_conflict_model())
        return launch_for_objects(func, objects, manager=self.get_async_manager(), **kwargs)

    def get_lock_states(self, objects: Iterable[Any]) -> dict[str, LockState]:
        """Lock state of the given rows (instances or pks) for marking them in a list."""
        items = list(objects)
        pks = [item.pk if isinstance(item, models.Model) else item for item in items]
        model = self.get_async_conflict_model()
        if model is None:
            return {}
        return lock_states(model, pks, self.get_async_manager())


#: The name PowerCRUD users know; ``AsyncLaunchMixin`` says what it does.
AsyncLaunchMixin = AsyncMixin


def _same_class(path: str, cls: type) -> bool:
    try:
        return import_string(path) is cls
    except ImportError:
        return False


AdminAction = Callable[["ModelAdmin[Any]", "HttpRequest", "QuerySet[Any]"], None]


def async_admin_action(
    func: Callable[..., Any] | str,
    *,
    description: str,
    conflict_model: Any = None,
    permissions: Sequence[str] | None = ("change",),
    name: str | None = None,
    manager_class_path: str | None = None,
    manager_config: Mapping[str, Any] | None = None,
    task_kwargs: Mapping[str, Any] | None = None,
    **launch_kwargs: Any,
) -> AdminAction:
    """Turn a job function into a Django admin action over the selected rows.

    The job runs as ``func(ids, **task_kwargs)`` under locks on those rows. The admin shows the
    task key on success, or which task holds the rows when refused. ``func`` must stay importable
    under its own name (a dotted path or a module-level function), so use this as a call, not as
    a decorator on the job itself. The manager is, in order: ``manager_class_path``, the
    ModelAdmin's ``get_async_manager()`` (if it uses ``AsyncMixin``), the project default.

    ``permissions`` defaults to ``("change",)``: a job usually writes the rows it is given, so a
    user who may only view them must not launch it. Pass ``permissions=()`` (or other admin
    permission names) deliberately; the action checks them again when it runs.
    """
    action_name = name or f"{_func_name(func)}_async"
    required = tuple(permissions or ())

    def action(modeladmin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for permission in required:
            if not getattr(modeladmin, f"has_{permission}_permission")(request):
                raise PermissionDenied(
                    f"Launching {action_name} needs the {permission} permission."
                )
        if manager_class_path is not None:
            manager = AsyncManager.resolve_manager(manager_class_path, manager_config)
        elif callable(getattr(modeladmin, "get_async_manager", None)):
            manager = modeladmin.get_async_manager()  # type: ignore[attr-defined]
        else:
            manager = AsyncManager.resolve_manager(None)
        result = launch_for_objects(
            func,
            queryset,
            manager=manager,
            conflict_model=conflict_model,
            user=request.user,
            description=description,
            task_kwargs=task_kwargs,
            **launch_kwargs,
        )
        level = messages.SUCCESS if result.ok else messages.ERROR
        modeladmin.message_user(request, result.message, level)

    action.__name__ = action.__qualname__ = action_name
    action.__doc__ = description
    return admin.action(description=description, permissions=required or None)(action)
