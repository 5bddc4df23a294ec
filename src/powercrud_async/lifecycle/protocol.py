"""What lifecycle code needs from a manager, as a ``Protocol``: the public ``AsyncManager``
satisfies it, and the modules here take it as a value instead of importing the facade above."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Manager(Protocol):
    """The calls lifecycle code makes on the manager a task belongs to."""

    config: dict[str, Any]

    @classmethod
    def class_path(cls) -> str: ...

    @staticmethod
    def import_class(path: str) -> type[Any]: ...

    @classmethod
    def resolve_manager(
        cls, path: Any = None, config: Mapping[str, Any] | None = None
    ) -> Manager: ...

    def emit(self, event: str, task_name: str, **payload: Any) -> None: ...

    def prepare_within(
        self, using: str, event: str, task_name: str, **payload: Any
    ) -> Callable[[], None] | None: ...

    def hears_events(self) -> bool: ...

    def launch_async_task(self, func: Any, *args: Any, **kwargs: Any) -> str: ...

    def event_batch(
        self, task_name: str, *, marked: bool = False
    ) -> AbstractContextManager[None]: ...

    def cleanup_dashboard_data(self, task_name: str) -> int: ...
