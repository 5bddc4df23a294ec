"""Operator actions on jobs (cancel, retry, release locks, delete), single or bulk.

Each action runs job by job through the job's own manager (so its lifecycle records update) and
returns a report that counts what happened, what was skipped and what was refused, and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..async_manager import AsyncManager
from ..exceptions import (
    AsyncManagerError,
    ConflictError,
    TamperedPayload,
    TaskNotRetryable,
    TaskStillLive,
    UnknownTask,
)
from ..lifecycle.liveness import liveness
from ..models import TaskEvent, TaskLogEntry
from ..statuses import ACTIVE, TaskStatus
from ..stores import TaskInfo, get_store
from .records import RecordSchema, status_of

logger = logging.getLogger("powercrud_async.dashboard")

DONE, REQUESTED, SKIPPED, REFUSED, ERROR = "done", "requested", "skipped", "refused", "error"


@dataclass(slots=True)
class Outcome:
    key: str
    result: str
    detail: str = ""
    new_key: str = ""
    count: int = 0


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    label: str
    destructive: bool
    help: str
    verb: str  # "cancel {key}", "release the locks of {key}"
    question: str  # with {n} and {jobs}
    confirm: str

    def ask(self, n: int) -> str:
        return self.question.format(
            n=n, jobs="job" if n == 1 else "jobs", records="record" if n == 1 else "records"
        )

    def confirm_label(self, n: int) -> str:
        return self.confirm.format(
            n=n, jobs="job" if n == 1 else "jobs", records="record" if n == 1 else "records"
        )


ACTIONS: dict[str, Action] = {
    "cancel": Action(
        "cancel",
        "Cancel",
        True,
        "Queued jobs are removed from the queue; running jobs stop at their next progress update.",
        "cancel",
        "Cancel {n} {jobs}?",
        "Yes, cancel {n} {jobs}",
    ),
    "retry": Action(
        "retry",
        "Retry",
        False,
        "Run failed or cancelled jobs again as new jobs.",
        "retry",
        "Retry {n} {jobs}?",
        "Yes, retry {n} {jobs}",
    ),
    "release": Action(
        "release",
        "Release locks",
        True,
        "Free the locks of dead or finished jobs; locks of live jobs are kept.",
        "release the locks of",
        "Release the locks of {n} {jobs}?",
        "Yes, release the locks of {n} {jobs}",
    ),
    "delete": Action(
        "delete",
        "Delete records",
        True,
        "Delete finished jobs' records, timelines and logs. This cannot be undone.",
        "delete the record of",
        "Delete {n} job {records}?",
        "Yes, delete {n} {records}",
    ),
}


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(slots=True)
class Report:
    action: str
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, result: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == result]

    @property
    def succeeded(self) -> int:
        return len(self.of(DONE)) + len(self.of(REQUESTED))

    @property
    def refused(self) -> int:
        return len(self.of(REFUSED))

    @property
    def errors(self) -> int:
        return len(self.of(ERROR))

    @property
    def level(self) -> str:
        if (self.refused or self.errors) and not self.succeeded:
            return "error"
        if self.refused or self.errors or (self.of(SKIPPED) and not self.succeeded):
            return "warning"
        return "success"

    @property
    def targets(self) -> list[str]:
        return [o.key for o in self.outcomes]

    @property
    def results(self) -> list[list[str]]:
        """``[key, result, detail]`` per key, for the audit trail."""
        return [[o.key, o.result, o.detail] for o in self.outcomes]

    @property
    def summary(self) -> str:
        if len(self.outcomes) == 1 and self.outcomes[0].result in (REFUSED, ERROR):
            only = self.outcomes[0]
            verb = "Refused to" if only.result == REFUSED else "Failed to"
            return f"{verb} {ACTIONS[self.action].verb} {only.key}: {only.detail}."
        done, requested = len(self.of(DONE)), len(self.of(REQUESTED))
        skipped, refused = self.of(SKIPPED), self.of(REFUSED)
        parts: list[str] = []
        if self.action == "cancel":
            if done or not (requested or skipped or refused):
                parts.append(f"Cancelled {_plural(done, 'job')}")
            if requested:
                parts.append(f"asked {_plural(requested, 'running job')} to stop")
        elif self.action == "retry":
            parts.append(f"Retried {_plural(done, 'job')}")
        elif self.action == "release":
            locks = sum(o.count for o in self.of(DONE))
            parts.append(f"Released {_plural(locks, 'lock')} of {_plural(done, 'job')}")
        elif self.action == "delete":
            parts.append(f"Deleted {_plural(done, 'job record')}")
        if skipped:
            reasons = {o.detail for o in skipped}
            parts.append(f"{len(skipped)} {reasons.pop() if len(reasons) == 1 else 'skipped'}")
        if refused:
            parts.append(f"{len(refused)} refused")
        if self.errors:
            parts.append(f"{_plural(self.errors, 'error')}")
        text = ", ".join(parts)
        return text[:1].upper() + text[1:] + "."


def manager_for(info: TaskInfo | None) -> AsyncManager:
    """The manager the job was launched with, so its record sees the events we cause."""
    if info is None or not info.manager_class:
        return AsyncManager.resolve_manager()
    return AsyncManager.resolve_manager(info.manager_class, info.manager_config)


def _cancel(key: str, status: TaskStatus | None, info: TaskInfo | None, user: Any) -> Outcome:
    if info is None:
        if status is not None and status not in ACTIVE:
            return Outcome(key, SKIPPED, "had already finished")
        return Outcome(
            key, REFUSED, "it is not in the live-task registry (purged or never launched)"
        )
    if not info.is_active:
        return Outcome(key, SKIPPED, "had already finished")
    result = manager_for(info).cancel_task(key, reason="Cancelled by an operator")
    if result == "cancelled":
        return Outcome(key, DONE, "cancelled")
    if result == "requested":
        return Outcome(key, REQUESTED, "running: it stops at its next progress update or heartbeat")
    return Outcome(key, SKIPPED, "had already finished")


def _retry(key: str, status: TaskStatus | None, info: TaskInfo | None, user: Any) -> Outcome:
    live = info is not None and info.is_active
    if live or (status is not None and status not in (TaskStatus.FAILED, TaskStatus.CANCELLED)):
        shown = (
            TaskStatus(info.status).label
            if live and info
            else (status.label if status else "unknown")
        )
        return Outcome(
            key,
            REFUSED,
            f"only failed or cancelled jobs can be retried (this one is {str(shown).lower()})",
        )
    owner = original_owner(info)
    if owner is None:
        return Outcome(key, REFUSED, "the user who launched it no longer exists")
    try:
        new_key = AsyncManager.resolve_manager().retry_task(key, user=owner or None)
    except TamperedPayload as exc:
        logger.warning("Refused to retry %s: %s", key, exc)
        return Outcome(key, REFUSED, str(exc))
    except UnknownTask:
        return Outcome(key, REFUSED, "its launch details were purged, so it cannot be run again")
    except ConflictError as exc:
        holders = ", ".join(getattr(exc, "holders", []) or [])
        return Outcome(key, REFUSED, f"its objects are locked by {holders or 'another job'}")
    except (TaskNotRetryable, AsyncManagerError, ValueError, TypeError, LookupError) as exc:
        return Outcome(key, REFUSED, str(exc))
    operator = str(user.get_username()) if user is not None and user.is_authenticated else "someone"
    TaskEvent.objects.create(
        task_name=new_key, event="retry", message=f"Retry of {key} launched by {operator}"[:2000]
    )
    return Outcome(key, DONE, "retried", new_key=new_key)


def original_owner(info: TaskInfo | None) -> Any:
    """Who a retry runs as: the job's own launcher, so it stays theirs (``""`` when the job had
    no user; ``None`` when that user was deleted, so nobody silently inherits it)."""
    if info is None or info.user_id is None:
        return ""
    model = get_user_model()
    try:
        return model._default_manager.filter(pk=info.user_id).first()
    except (ValueError, TypeError):
        return None


def _release(key: str, status: TaskStatus | None, info: TaskInfo | None, user: Any) -> Outcome:
    if info is None:
        live = [
            lock for lock in get_store().locks(task_name=key) if lock.expires_at > timezone.now()
        ]
        if live:
            return Outcome(
                key,
                REFUSED,
                "it is a live reservation: its locks are freed when it "
                "launches, is released by its owner, or expires",
            )
    # A dead job is ended with the cause cleanup would record (its worker died), not with the
    # operator's action; the action goes on the job's timeline beside it.
    cause = _dead_cause(info)
    try:
        count = manager_for(info).release_task_locks(
            key, reason=cause or "Locks released by an operator"
        )
    except TaskStillLive as exc:
        return Outcome(key, REFUSED, f"still live ({exc})")
    if not count:
        return Outcome(key, SKIPPED, "held no locks")
    who = getattr(user, "get_username", lambda: "")() or "an operator"
    TaskEvent.objects.create(
        task_name=key,
        event="release",
        message=f"{who} released {count} lock{'' if count == 1 else 's'}",
    )
    return Outcome(key, DONE, "released", count=count)


def _dead_cause(info: TaskInfo | None) -> str:
    if info is None or not info.is_active:
        return ""
    alive, why = liveness(info)
    return "" if alive else why


PerTask = Callable[[str, "TaskStatus | None", "TaskInfo | None", Any], Outcome]
PER_TASK: dict[str, PerTask] = {"cancel": _cancel, "retry": _retry, "release": _release}


def run(
    action: str, keys: list[str], records: dict[str, Any], schema: RecordSchema, user: Any
) -> Report:
    """Apply ``action`` to ``keys``; ``records`` holds the visible records by task key."""
    report = Report(action)
    infos = get_store().get_many(keys)
    if action == "delete":
        return _delete(report, keys, records, infos, schema)
    handler = PER_TASK[action]
    for key in keys:
        record = records.get(key)
        status = status_of(schema.value(record, "status")) if record is not None else None
        try:
            report.outcomes.append(handler(key, status, infos.get(key), user))
        except UnknownTask:
            report.outcomes.append(Outcome(key, REFUSED, "it is not in the live-task registry"))
        except AsyncManagerError as exc:
            report.outcomes.append(Outcome(key, REFUSED, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one broken job must not hide the others' outcomes
            logger.exception("%s of %s failed", action, key)
            report.outcomes.append(Outcome(key, ERROR, f"{type(exc).__name__}: {exc}"[:500]))
    return report


def _delete(
    report: Report,
    keys: list[str],
    records: dict[str, Any],
    infos: dict[str, TaskInfo],
    schema: RecordSchema,
) -> Report:
    deletable: list[str] = []
    for key in keys:
        info = infos.get(key)
        record = records.get(key)
        if record is None:
            report.outcomes.append(Outcome(key, SKIPPED, "had no record"))
        elif (info is not None and info.is_active) or (
            info is None and status_of(schema.value(record, "status")) in ACTIVE
        ):
            report.outcomes.append(
                Outcome(key, REFUSED, "it is still queued or running: cancel it first")
            )
        else:
            deletable.append(key)
    if deletable:
        key_field = schema["task_name"]
        with transaction.atomic():
            if key_field:
                schema.model._default_manager.filter(**{f"{key_field}__in": deletable}).delete()
            else:
                schema.model._default_manager.filter(
                    pk__in=[records[k].pk for k in deletable]
                ).delete()
            TaskEvent.objects.filter(task_name__in=deletable).delete()
            TaskLogEntry.objects.filter(task_name__in=deletable).delete()
        report.outcomes.extend(Outcome(key, DONE, "deleted") for key in deletable)
    return report
