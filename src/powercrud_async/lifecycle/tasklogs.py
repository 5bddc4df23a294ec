"""Capture what a job logs through ``logging`` while it runs, tagged with its task key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils import timezone

from .. import conf

logger = logging.getLogger("powercrud_async.lifecycle.tasklogs")


class TaskLogHandler(logging.Handler):
    """Buffers records emitted by one thread (the job's) and writes them in batches."""

    def __init__(self, task_name: str, thread_id: int, limit: int, level: int):
        super().__init__(level)
        self.task_name = task_name
        self.thread_id = thread_id
        self.limit = limit
        self.kept = 0
        self.dropped = 0
        self.pending: list[Any] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id or record.name.startswith(
            "powercrud_async.lifecycle.tasklogs"
        ):
            return
        from ..models import TaskLogEntry

        with self._lock:
            if self.kept >= self.limit:
                self.dropped += 1
                return
            self.kept += 1
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken format string must not break the job
                message = str(record.msg)
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            self.pending.append(
                TaskLogEntry(
                    task_name=self.task_name,
                    created_at=timezone.now(),
                    level=record.levelno,
                    level_name=record.levelname,
                    logger_name=record.name[:255],
                    message=message,
                )
            )

    def flush(self) -> None:
        from ..models import TaskLogEntry

        with self._lock:
            batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            TaskLogEntry.objects.bulk_create(batch)
        except Exception:  # noqa: BLE001 - losing log lines must never fail the job
            logger.exception(
                "Could not store %d log records of task %s", len(batch), self.task_name
            )


@contextmanager
def capture_logs(task_name: str) -> Iterator[TaskLogHandler | None]:
    """Install a handler on the root logger for the current thread's records of this job."""
    limit = conf.get("TASK_LOG_MAX_RECORDS")
    if not limit:
        yield None
        return
    level = logging.getLevelName(str(conf.get("TASK_LOG_LEVEL")).upper())
    handler = TaskLogHandler(
        task_name, threading.get_ident(), limit, level if isinstance(level, int) else logging.INFO
    )
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.flush()
