"""Durable state: locks, the live-task registry, timelines, job logs, the operator audit trail,
and the abstract record a project subclasses for its dashboard."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .statuses import TaskStatus

STATUS_LENGTH = max(len(v) for v in TaskStatus.values)


class TaskLock(models.Model):
    """One locked object. The unique constraint is what makes acquisition atomic."""

    model_label = models.CharField(max_length=100)
    object_pk = models.CharField(max_length=255)
    task_name = models.CharField(max_length=255, db_index=True)
    acquired_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_label", "object_pk"], name="pcrud_async_lock_uniq"
            )
        ]
        verbose_name = _("task lock")

    def __str__(self) -> str:
        return f"{self.model_label}:{self.object_pk} ({self.task_name})"


class LiveTask(models.Model):
    """The registry row of a launched job; its state moves only by compare-and-set."""

    task_name = models.CharField(max_length=255, primary_key=True)
    status = models.CharField(max_length=STATUS_LENGTH, choices=TaskStatus.choices, db_index=True)
    func_path = models.CharField(max_length=255, blank=True)
    call = models.BinaryField(blank=True, null=True, help_text="Pickled (args, kwargs) for retry.")
    manager_class = models.CharField(max_length=255, blank=True)
    manager_config = models.JSONField(blank=True, null=True)
    user_id = models.CharField(max_length=255, blank=True, null=True)  # noqa: DJ001 - None: no user
    conflict_ids = models.JSONField(blank=True, null=True)
    group = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(blank=True, null=True)
    heartbeat_at = models.DateTimeField(blank=True, null=True)
    finished_at = models.DateTimeField(blank=True, null=True, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True)
    retry_of = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True)
    events_due = models.BooleanField(default=False, db_index=True)

    class Meta:
        verbose_name = _("live task")

    def __str__(self) -> str:
        return f"{self.task_name} ({self.status})"


class TaskEvent(models.Model):
    """One lifecycle event of a task, for the dashboard's timeline."""

    task_name = models.CharField(max_length=255, db_index=True)
    event = models.CharField(max_length=20)
    status = models.CharField(max_length=STATUS_LENGTH, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task_name", "id"]
        verbose_name = _("task event")

    def __str__(self) -> str:
        return f"{self.task_name} {self.event}"


class TaskLogEntry(models.Model):
    """A ``logging`` record emitted while a job ran, captured by the runner's handler."""

    task_name = models.CharField(max_length=255, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    level = models.PositiveSmallIntegerField()
    level_name = models.CharField(max_length=20)
    logger_name = models.CharField(max_length=255, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["task_name", "id"]
        verbose_name = _("task log entry")
        verbose_name_plural = _("task log entries")

    def __str__(self) -> str:
        return f"{self.task_name} {self.level_name}"


class AuditEntry(models.Model):
    """An operator action taken from the dashboard: who, what, on which tasks, with what outcome."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    username = models.CharField(max_length=255, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=50, db_index=True)
    targets = models.JSONField(default=list)
    outcome = models.TextField(blank=True)
    succeeded = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    results = models.JSONField(
        default=list, blank=True, help_text=_("[task key, result, detail] per key.")
    )
    repeats = models.PositiveIntegerField(
        default=1,
        help_text=_("How many refused attempts of this user were folded into this entry."),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.created_at:%Y-%m-%d %H:%M}"


class AbstractAsyncTaskRecord(models.Model):
    """What a project's dashboard model subclasses: ``class AsyncTaskRecord(AbstractAsyncTaskRecord): pass``."""

    STATUS = TaskStatus

    task_name = models.CharField(max_length=255, unique=True)
    status = models.CharField(
        max_length=STATUS_LENGTH,
        choices=TaskStatus.choices,
        default=TaskStatus.PENDING,
        db_index=True,
    )
    message = models.TextField(blank=True)
    progress_payload = models.TextField(blank=True)
    percent = models.FloatField(blank=True, null=True)
    user_label = models.CharField(max_length=255, blank=True, db_index=True)
    user_pk = models.CharField(  # noqa: DJ001 - None: launched with no user
        max_length=255,
        blank=True,
        null=True,
        db_index=True,
        help_text=_(
            "The launcher's primary key: what ownership is decided by (the label is display only)."
        ),
    )
    affected_objects = models.TextField(blank=True)
    func_path = models.CharField(max_length=255, blank=True)
    args_payload = models.JSONField(blank=True, null=True)
    kwargs_payload = models.JSONField(blank=True, null=True)
    result_payload = models.JSONField(blank=True, null=True)
    error = models.TextField(
        blank=True, help_text=_("The error of a failed job, e.g. 'ValueError: bad row'.")
    )
    traceback = models.TextField(blank=True)
    cleaned_up = models.BooleanField(default=False, db_index=True)
    retry_of = models.CharField(max_length=255, blank=True, db_index=True)
    label = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("What the launch site called the job; the title the dashboard shows."),
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    started_at = models.DateTimeField(blank=True, null=True)
    completed_at = models.DateTimeField(blank=True, null=True, db_index=True)
    failed_at = models.DateTimeField(blank=True, null=True, db_index=True)
    cancelled_at = models.DateTimeField(blank=True, null=True)
    duration = models.FloatField(blank=True, null=True, help_text=_("Seconds from start to end."))

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task_name} ({self.status})"

    @property
    def finished_at(self):  # type: ignore[no-untyped-def]
        return self.completed_at or self.failed_at or self.cancelled_at


class ScheduleState(models.Model):
    """What a django-q2 ``Schedule`` cannot hold: a pause that keeps the exact trigger to resume
    with, and the last run launched through the manager (its job, or why it did not run)."""

    schedule = models.OneToOneField(
        "django_q.Schedule",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="powercrud_state",
    )
    paused_at = models.DateTimeField(blank=True, null=True)
    paused_by = models.CharField(max_length=255, blank=True)
    saved_repeats = models.IntegerField(blank=True, null=True)
    saved_next_run = models.DateTimeField(blank=True, null=True)
    last_task = models.CharField(max_length=255, blank=True)
    last_outcome = models.CharField(max_length=20, blank=True)
    last_message = models.TextField(blank=True)
    last_run_at = models.DateTimeField(blank=True, null=True)

    class Meta:
        verbose_name = _("schedule state")

    def __str__(self) -> str:
        return f"schedule {self.schedule_id}"
