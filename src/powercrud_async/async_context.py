"""Tell code deep in a call stack (a model's ``save()``) that it already runs inside a job.

Inside a job, nested work registers its objects under the parent's locks and reports progress
under the parent's key instead of launching child jobs that "finish" at once while work goes on.
The runner enters ``task_context`` for every job, so any worker is covered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .async_manager import AsyncManager

__all__ = [
    "TaskContext",
    "clear_current_task",
    "get_current_task",
    "get_manager_for_context",
    "register_descendant_conflicts",
    "register_descendants",
    "set_current_task",
    "skip_nested_async",
    "task_context",
    "update_progress",
]

F = TypeVar("F", bound=Callable[..., Any])


class TaskContext:
    """The job the current code runs under: its key, and the manager (class path, config) it uses."""

    __slots__ = ("_manager", "manager_class_path", "manager_config", "task_name")

    def __init__(
        self,
        task_name: str,
        manager_class_path: str | None = None,
        manager: AsyncManager | None = None,
        manager_config: dict[str, Any] | None = None,
    ):
        from .conflicts import NAME_MAX_LENGTH, text_problem
        from .exceptions import InvalidTaskName

        if not isinstance(task_name, str) or not task_name:
            raise InvalidTaskName("task_context needs a non-empty task_name string.")
        problem = text_problem(task_name, NAME_MAX_LENGTH)  # it owns the locks registered under it
        if problem:
            raise InvalidTaskName(f"task_context name {task_name[:20]!r} {problem}.")
        if manager is not None and manager_class_path is None:
            manager_class_path = type(manager).class_path()
        if manager is not None and manager_config is None:
            manager_config = manager.config
        self.task_name = task_name
        self.manager_class_path = manager_class_path
        self.manager_config = manager_config
        self._manager = manager

    @property
    def manager(self) -> AsyncManager:
        """The context's manager instance, created on first use with the context's config."""
        if self._manager is None:
            from .async_manager import AsyncManager

            self._manager = AsyncManager.resolve_manager(
                self.manager_class_path, self.manager_config
            )
        return self._manager

    # Mapping-style access, for code written against the dict PowerCRUD passes to jobs.
    def __getitem__(self, key: str) -> Any:
        if key in ("task_name", "manager_class_path", "manager_config"):
            return getattr(self, key)
        if key == "manager":
            return self.manager
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __repr__(self) -> str:
        return f"TaskContext(task_name={self.task_name!r}, manager_class_path={self.manager_class_path!r})"


_current: ContextVar[TaskContext | None] = ContextVar("powercrud_async_task", default=None)


class task_context:  # noqa: N801 - used like contextlib helpers
    """Run a block (``with``), a function or a coroutine function (decorator) as part of job
    ``task_name``.

    Contexts nest and restore the outer one on exit. ``ContextVar`` semantics keep them out of
    other threads and sibling asyncio tasks, and one ``task_context`` object may be entered in
    several of them at once: each entry is undone in the thread or task that made it.
    """

    def __init__(
        self,
        task_name: str,
        manager_class_path: str | None = None,
        manager: AsyncManager | None = None,
        manager_config: dict[str, Any] | None = None,
    ):
        self._args = (task_name, manager_class_path, manager, manager_config)
        # One entry per TaskContext this object set, found again on exit through the context
        # variable itself, so entries made in different threads or asyncio tasks never mix.
        self._tokens: dict[int, Token[TaskContext | None]] = {}

    def __enter__(self) -> TaskContext:
        ctx = TaskContext(*self._args)
        self._tokens[id(ctx)] = _current.set(ctx)
        return ctx

    def __exit__(self, *exc: object) -> None:
        token = self._tokens.pop(id(_current.get()), None)
        if token is None:
            raise RuntimeError(
                f"Leaving task_context({self._args[0]!r}), which is not the innermost task context "
                "here: contexts must be left in the reverse order they were entered."
            )
        _current.reset(token)

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
                with task_context(*self._args):
                    return await func(*args, **kwargs)

            return coroutine_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with task_context(*self._args):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class set_current_task(task_context):  # noqa: N801
    """Set the current task now; also a context manager that restores the previous one on exit."""

    def __init__(self, *args: Any, **kwargs: Any):  # task_context's arguments
        super().__init__(*args, **kwargs)
        self.context = super().__enter__()

    def __enter__(self) -> TaskContext:
        return self.context


def clear_current_task() -> None:
    """Forget the current task in this context (after a bare ``set_current_task`` call)."""
    _current.set(None)


def get_current_task() -> TaskContext | None:
    """The ``TaskContext`` of the job this code runs in, or ``None`` outside a job."""
    return _current.get()


def skip_nested_async() -> bool:
    """True inside a job: do nested work synchronously instead of launching another job."""
    return _current.get() is not None


def get_manager_for_context(manager_class_path: str | None = None) -> AsyncManager:
    """The current job's manager (or a resolved one for ``manager_class_path``)."""
    ctx = _current.get()
    if ctx is not None and manager_class_path in (None, ctx.manager_class_path):
        return ctx.manager
    from .async_manager import AsyncManager

    return AsyncManager.resolve_manager(manager_class_path)


def register_descendant_conflicts(model_path: Any, ids: Iterable[Any]) -> bool:
    """Lock ``ids`` of ``model_path`` under the current job's key, all or none.

    Returns ``False`` (and locks nothing) outside a job. Raises ``ConflictError`` naming the
    holders if another task holds any of them; bad input raises before anything is locked.
    """
    return register_descendants({model_path: ids})


def register_descendants(
    model_path: Any | Mapping[Any, Iterable[Any]], ids: Iterable[Any] | None = None
) -> bool:
    """``register_descendants("app.Child", ids)`` or ``register_descendants({"app.Child": ids, ...})``."""
    conflict_ids = (
        model_path if ids is None and isinstance(model_path, Mapping) else {model_path: ids}
    )
    ctx = _current.get()
    from .conflicts import normalize_conflict_ids

    normalized = normalize_conflict_ids(conflict_ids)  # validate even outside a job
    if ctx is None:
        return False
    ctx.manager.acquire_or_raise(ctx.task_name, normalized)
    return True


def update_progress(
    message: str, *, current: float | None = None, total: float | None = None
) -> bool:
    """Report progress under the current job; a no-op (returning False) outside a job, or in a
    context entered by hand for a key that was never launched (nobody can poll it)."""
    from .exceptions import UnknownTask

    ctx = _current.get()
    if ctx is None:
        return False
    try:
        ctx.manager.update_progress(ctx.task_name, message, current=current, total=total)
    except UnknownTask:
        return False
    return True
